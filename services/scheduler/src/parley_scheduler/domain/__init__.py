"""The scheduler's pure rules: campaigns, accounts and planning. No I/O here."""

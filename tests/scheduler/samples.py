"""A campaign and accounts used across the scheduler's tests."""

from __future__ import annotations

CAMPAIGN = """\
id: late-payers
name: Late payers, text first
audience:
  min_days_past_due: 30
steps:
  - day_offset: 0
    channel: sms
    template: first-notice
  - day_offset: 0
    channel: email
    template: first-notice
    conditions: [only_if_previous_undelivered]
  - day_offset: 3
    channel: email
    template: first-notice
    conditions: [skip_if_paid]
"""

HEADER = (
    "debtor_id,name,phone,email,time_zone,country,region,locale,balance,days_past_due,paid,"
    "sms_consent_evidence,sms_consented_at,phone_confirmed_at,email_provenance,creditor,reference\n"
)
ROWS = [
    "ny-1,Ann Example,+12125550101,ann@example.com,America/New_York,US,NY,en,120.00,45,false,"
    "form-1,2026-01-05,2026-11-20,consumer_used,Northwind,R1\n",
    "la-1,Bea Example,+12135550102,bea@example.com,America/Los_Angeles,US,CA,en,80.00,60,false,"
    "form-2,2026-01-05,2026-11-20,consumer_used,Northwind,R2\n",
    "paid-1,Cal Example,+12125550103,cal@example.com,America/New_York,US,NY,en,0.00,90,true,"
    "form-3,2026-01-05,2026-11-20,consumer_used,Northwind,R3\n",
    "new-1,Dee Example,+12125550104,dee@example.com,America/New_York,US,NY,en,50.00,5,false,"
    "form-4,2026-01-05,2026-11-20,consumer_used,Northwind,R4\n",
]
ACCOUNTS = HEADER + "".join(ROWS)
# new-1 is 5 days past due: outside the campaign's audience.
IN_AUDIENCE = {"ny-1", "la-1", "paid-1"}

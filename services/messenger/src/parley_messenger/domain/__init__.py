"""The messenger's pure rules: what a send is, when it may leave, how a message is composed.

No I/O here: handlers feed these functions what the adapters read.
"""

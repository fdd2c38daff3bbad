"""The responses stage: what came back from the clearinghouse and the payer.

read_responses() reads every new file of the responses folder (any name; TA1,
999 005010X231A1, 277CA 005010X214, 835 005010X221A1), each once by SHA-256
and each in a transaction of its own (intake.py), then records overpayments:
paid claims whose patient-month would now bill less (sql/billing/
detect_overpayments.sql). It runs before the claims stage, so a rejection read
tonight is billed again tonight when its content changed or it was released.
"""
from transforms.billing.responses.intake import RESPONSE_FAULT_POINTS, read_responses

__all__ = ["RESPONSE_FAULT_POINTS", "read_responses"]

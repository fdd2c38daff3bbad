"""NPI check digit (Luhn over the 80840 health-industry prefix, per CMS)."""
import re

_NPI = re.compile(r"^\d{10}$")


def npi_is_valid(npi: str | None) -> bool:
    if npi is None or not _NPI.match(npi):
        return False
    total = 0
    # Digits right to left, check digit first; prefix 80840 folds into the sum.
    for i, ch in enumerate(reversed("80840" + npi)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0

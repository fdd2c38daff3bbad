"""The export contract as data: tables, keys, optional columns, vocabularies, and the
check digit of the NPIs it names.

Column types live in sql/raw/<table>.sql (the typed raw tables); this module
only says what the contract says beyond types.
"""
import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TableSpec:
    name: str
    key: tuple[str, ...]
    columns: tuple[str, ...]
    optional: frozenset[str] = frozenset()  # may be empty, and may be absent from the file
    vocab: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Columns whose values may name a person: never copied into quarantine or logs.
    phi: frozenset[str] = frozenset()
    # Optional columns that carry audit evidence: whether the file had them is
    # recorded per row (raw.<table>._absent_columns), because a column the export
    # carries but leaves empty is missing evidence (a hold), while a column the
    # export lacks is a gap to report, not a reason to stop billing.
    evidence: frozenset[str] = frozenset()

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c not in self.optional)


PAYERS = ("medicare_part_b", "medicare_advantage", "medicaid", "commercial", "self_pay")
PRACTITIONER_ROLES = ("physician", "np", "pa", "cns", "cnm")
CLINICAL_STAFF_ROLES = ("rn", "lpn", "ma", "pharmacist", "care_coordinator")

TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in (
        TableSpec(
            "patients",
            key=("patient_id",),
            columns=("patient_id", "mbi", "first_name", "last_name", "birth_date", "sex", "address_line1",
                     "address_line2", "city", "state", "zip", "primary_payer"),
            optional=frozenset({"address_line2"}),
            vocab={"sex": ("M", "F", "U"), "primary_payer": PAYERS},
            phi=frozenset({"mbi", "first_name", "last_name", "birth_date", "address_line1", "address_line2"}),
        ),
        TableSpec("staff", key=("staff_id",),
                  columns=("staff_id", "full_name", "role", "npi", "credential", "supervising_npi"),
                  optional=frozenset({"npi", "credential", "supervising_npi"}),
                  evidence=frozenset({"credential", "supervising_npi"})),
        TableSpec(
            "conditions",
            key=("patient_id", "icd10_code"),
            columns=("patient_id", "icd10_code", "description", "onset_date", "resolved_date", "chronic"),
            optional=frozenset({"description", "onset_date", "resolved_date", "chronic"}),
        ),
        TableSpec(
            "consents",
            key=("patient_id", "consent_date"),
            columns=("patient_id", "consent_date", "method", "billing_npi", "revoked_date", "obtained_by",
                     "elements_explained"),
            optional=frozenset({"revoked_date", "obtained_by", "elements_explained"}),
            vocab={"method": ("written", "verbal")},
            evidence=frozenset({"obtained_by", "elements_explained"}),
        ),
        TableSpec(
            "care_plans",
            key=("plan_id",),
            columns=("plan_id", "patient_id", "established_date", "revised_date", "revision", "complexity",
                     "shared_with_patient_date", "focus_icd10", "goals"),
            optional=frozenset({"revised_date", "shared_with_patient_date", "focus_icd10", "goals"}),
            vocab={"revision": ("none", "minor", "substantial"), "complexity": ("standard", "complex")},
            evidence=frozenset({"shared_with_patient_date", "focus_icd10", "goals"}),
        ),
        TableSpec(
            "encounters",
            key=("encounter_id",),
            columns=("encounter_id", "patient_id", "encounter_date", "cpt_code", "rendering_npi",
                     "place_of_service", "discharge_date"),
            optional=frozenset({"rendering_npi", "place_of_service", "discharge_date"}),
            evidence=frozenset({"place_of_service", "discharge_date"}),
        ),
        TableSpec(
            "activities",
            key=("activity_id",),
            columns=("activity_id", "patient_id", "staff_id", "started_at", "duration_minutes", "activity_type",
                     "face_to_face", "note", "documented_at", "status"),
            optional=frozenset({"status"}),
            vocab={"status": ("active", "voided")},
            phi=frozenset({"note"}),
        ),
    )
}

# The consent elements the practitioner must explain and the record must show (MLN909188).
CONSENT_ELEMENTS = ("availability", "cost_sharing", "one_practitioner", "right_to_stop")

# Load order: reference tables before the ones that point at them.
LOAD_ORDER = ("patients", "staff", "conditions", "consents", "care_plans", "encounters", "activities")


# NPI check digit (Luhn over the 80840 health-industry prefix, per CMS).
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

"""Synthetic EHR landing drops for the CCM pipeline.

Writes `<out>/<YYYY-MM-DD>/` drop folders holding the seven contract tables
(see /work/shared/contract/README.md) with realistic shapes and defects planted
at known rates (`DEFECT_RATES`), so that the pipeline, its tests and its
benchmarks all have something honest to chew on. Everything is vectorised
(numpy + polars): ~10M activity rows take about a minute. Same arguments and
seed give byte-identical files.

No real person's data: names, MBIs, NPIs and addresses are random
combinations of common words and valid-looking identifiers.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

# --- the contract -----------------------------------------------------------

COLUMNS: dict[str, list[str]] = {
    "patients": ["patient_id", "mbi", "first_name", "last_name", "birth_date", "sex",
                 "address_line1", "address_line2", "city", "state", "zip", "primary_payer"],
    "staff": ["staff_id", "full_name", "role", "npi"],
    "conditions": ["patient_id", "icd10_code", "description", "onset_date",
                   "resolved_date", "chronic"],
    "consents": ["patient_id", "consent_date", "method", "billing_npi", "revoked_date"],
    "care_plans": ["plan_id", "patient_id", "established_date", "revised_date", "revision",
                   "complexity", "shared_with_patient_date"],
    "encounters": ["encounter_id", "patient_id", "encounter_date", "cpt_code", "rendering_npi"],
    "activities": ["activity_id", "patient_id", "staff_id", "started_at", "duration_minutes",
                   "activity_type", "face_to_face", "note", "documented_at", "status"],
}
TABLES = tuple(COLUMNS)
TIME_ZONE = "America/New_York"

# --- schedule ---------------------------------------------------------------

DEFAULT_END_MONTH = date(2026, 11, 1)  # default window = the `months` months before this
FIRST_DROP_DAY = 3                     # first drop on the 3rd of the first month
DROP_EVERY_DAYS = 7
OVERLAP_DAYS = 7                       # each drop re-exports the week before the previous one
# The last drop lands at least this many days after the last month ends, so
# every generated month is closed even under the pipeline's maximum grace (7).
FINAL_DROP_DAYS_AFTER_CLOSE = 7

# --- planted defects (share of activities unless noted) ----------------------

DEFECT_RATES: dict[str, float] = {
    "vague_note": 0.04,
    "late_documentation": 0.03,          # documented 2-6 days after the activity
    "very_late_documentation": 0.01,     # documented 8-20 days after
    "documented_before_activity": 0.003,
    "face_to_face": 0.03,
    "non_clinical_staff": 0.02,          # entered by front_desk / billing
    "staff_overlap": 0.005,              # starts inside the same staff member's previous entry
    "implausible_duration": 0.002,       # 0 or 300 minutes
    "amended_note": 0.01,                # rewritten note in a later drop
    "voided": 0.005,                     # status=voided in a later drop
    "duplicate_in_drop": 0.005,          # share of a drop's rows written twice
    "malformed": 0.0005,                 # CSV only, split over the three kinds below
}
MALFORMED_KINDS = ("malformed_started_at", "negative_duration", "unknown_patient")
OFFSET_TIMESTAMP_SHARE = 0.15  # "-05:00"/"-04:00" local with offset
UTC_TIMESTAMP_SHARE = 0.15     # converted to UTC, "Z"
UNKNOWN_PATIENT_ID = "P0000000"  # ids start at 1, so this never exists

# --- practice shape -----------------------------------------------------------

# One care team per ~500 patients keeps each staff member's day plausible at
# any scale (a single team of ~10 for demos and tests).
PATIENTS_PER_TEAM = 500
TEAM_ROLES = ["physician", "physician", "np", "rn", "rn", "ma", "ma", "lpn",
              "pharmacist", "care_coordinator", "front_desk", "billing"]
PRACTITIONER_SLOTS = 3
NON_CLINICAL_SLOTS = (10, 11)
# who logs a clinical activity: -1 = the patient's own billing practitioner
ACTIVITY_STAFF_SLOTS = np.array([-1, 3, 4, 5, 6, 7, 8, 9])
ACTIVITY_STAFF_WEIGHTS = np.array([0.10, 0.17, 0.17, 0.10, 0.10, 0.10, 0.10, 0.16])

PAYERS = ["medicare_part_b", "medicare_advantage", "medicaid", "commercial", "self_pay"]
PAYER_WEIGHTS = [0.85, 0.08, 0.04, 0.02, 0.01]

CHRONIC_CODES = [  # code, description, prevalence weight among older adults
    ("I10", "Essential (primary) hypertension", 10),
    ("E78.5", "Hyperlipidemia, unspecified", 8),
    ("E11.9", "Type 2 diabetes mellitus without complications", 6),
    ("I25.10", "Atherosclerotic heart disease of native coronary artery without angina pectoris", 3),
    ("N18.30", "Chronic kidney disease, stage 3 unspecified", 3),
    ("E66.9", "Obesity, unspecified", 3),
    ("K21.9", "Gastro-esophageal reflux disease without esophagitis", 3),
    ("M17.0", "Bilateral primary osteoarthritis of knee", 3),
    ("J44.9", "Chronic obstructive pulmonary disease, unspecified", 2),
    ("I50.9", "Heart failure, unspecified", 2),
    ("F32.9", "Major depressive disorder, single episode, unspecified", 2),
    ("I48.91", "Unspecified atrial fibrillation", 2),
    ("E03.9", "Hypothyroidism, unspecified", 2),
    ("M81.0", "Age-related osteoporosis without current pathological fracture", 1.5),
    ("J45.909", "Unspecified asthma, uncomplicated", 1),
    ("G30.9", "Alzheimer's disease, unspecified", 1),
]
ACUTE_CODES = [
    ("J06.9", "Acute upper respiratory infection, unspecified"),
    ("S93.401A", "Sprain of unspecified ligament of right ankle, initial encounter"),
    ("N39.0", "Urinary tract infection, site not specified"),
    ("J02.9", "Acute pharyngitis, unspecified"),
]

ACTIVITY_TYPES = ["medication_reconciliation", "care_plan_review", "phone_outreach",
                  "specialist_coordination", "patient_education", "lab_review",
                  "referral_management", "symptom_follow_up"]
ACTIVITY_TYPE_WEIGHTS = [0.15, 0.12, 0.22, 0.10, 0.12, 0.12, 0.07, 0.10]

# Good notes: specific, what was done and decided. {slot} names a vocabulary.
NOTE_TEMPLATES: dict[str, list[str]] = {
    "medication_reconciliation": [
        "Reconciled medication list with patient by phone; confirmed {med} dose and removed discontinued {old_med}.",
        "Reviewed pharmacy fill history: refills of {med} were late. Arranged 90-day mail-order supply and reviewed pill organizer use.",
        "Medication reconciliation after {specialist} visit: added {med}, checked interactions, updated list, patient informed.",
    ],
    "care_plan_review": [
        "Reviewed care plan goals with patient: {goal}. Updated self-management targets and next review date.",
        "Care plan update: added goal to {goal}; patient agreed, copy mailed to home address.",
        "Care plan review with caregiver; barriers discussed (transportation, cost of {med}), resources provided.",
    ],
    "phone_outreach": [
        "Monthly check-in call. Patient reports {symptom} {change}; reviewed {log} log and reinforced goal to {goal}.",
        "Called patient re: {log} readings; values discussed, reminded to bring log to next visit.",
        'Check-in call: patient states "{quote}". Reviewed {log} log; no changes needed.',
        "Outreach call after ED visit for {symptom}.\nPlan: follow-up with PCP this week, continue {med}.",
    ],
    "specialist_coordination": [
        "Coordinated with {specialist} office regarding upcoming appointment; sent recent labs and medication list.",
        "Received {specialist} consult note; summarized recommendations for PCP and updated care plan.",
    ],
    "patient_education": [
        "Educated patient on {topic}; used teach-back, patient verbalized understanding.",
        "Provided written and verbal education on {topic}; answered questions about {med}.",
    ],
    "lab_review": [
        "Reviewed {lab} result with patient; value at goal, continue current plan. Next draw scheduled.",
        "{lab} out of range; notified PCP, repeat test ordered and patient informed of fasting instructions.",
    ],
    "referral_management": [
        "Tracked referral to {specialist}; appointment confirmed and transportation arranged.",
        "Referral to {service} submitted; prior authorization pending, patient informed of timeline.",
    ],
    "symptom_follow_up": [
        "Follow-up on {symptom}: patient reports {change}; no red-flag symptoms. Advised to call if worsening.",
        "Symptom check for {symptom}; reviewed {log} log, PCP consulted, {med} timing adjusted.",
    ],
}
VOCAB: dict[str, list[str]] = {
    "med": ["metformin", "lisinopril", "atorvastatin", "amlodipine", "furosemide", "apixaban",
            "levothyroxine", "sertraline", "tiotropium inhaler", "insulin glargine",
            "carvedilol", "omeprazole"],
    "old_med": ["simvastatin", "hydrochlorothiazide", "glipizide", "ranitidine",
                "metoprolol tartrate", "warfarin"],
    "goal": ["walk 20 minutes five days a week", "keep fasting glucose under 130",
             "check blood pressure every morning", "limit sodium to 2 grams a day",
             "weigh daily and report a gain over 3 pounds", "attend pulmonary rehab twice a week"],
    "symptom": ["ankle swelling", "shortness of breath", "dizziness", "knee pain",
                "low mood", "fatigue", "heartburn", "cough"],
    "change": ["improved since last call", "unchanged", "slightly worse at night",
               "resolved", "better with new dose"],
    "log": ["blood pressure", "glucose", "weight", "oxygen saturation", "peak flow"],
    "specialist": ["cardiology", "nephrology", "endocrinology", "pulmonology",
                   "orthopedics", "neurology"],
    "topic": ["low-sodium diet", "hypoglycemia warning signs", "inhaler technique",
              "fall prevention at home", "heart failure daily weights", "foot care in diabetes"],
    "lab": ["HbA1c", "basic metabolic panel", "lipid panel", "eGFR", "TSH", "INR"],
    "service": ["home health physical therapy", "diabetes education program",
                "cardiac rehabilitation", "behavioral health counseling"],
    "quote": ["my breathing is better on the new inhaler", "I ran out of pills last week",
              "the swelling is down", "I feel more steady on my feet"],
}
VAGUE_NOTES = ["Patient call - 5 minutes", "f/u", "chart review", "left message",
               "called pt", "phone call", "CCM time", "reviewed chart"]
NON_CLINICAL_NOTES = [
    "Scheduled follow-up appointment and confirmed insurance on file.",
    "Mailed appointment reminder and updated phone number.",
    "Called patient to confirm appointment time; transportation booked.",
    "Updated billing address and secondary insurance card.",
]

FEMALE_FIRST = ["Mary", "Patricia", "Linda", "Barbara", "Elizabeth", "Susan", "Margaret",
                "Dorothy", "Nancy", "Karen", "Betty", "Helen", "Sandra", "Donna", "Carol",
                "Ruth", "Sharon", "Joan", "Judith", "Shirley", "Rosa", "Maria", "Gloria",
                "Evelyn", "Jean", "Alice", "Frances", "Ana", "Grace", "Wanda"]
MALE_FIRST = ["James", "Robert", "John", "Michael", "William", "David", "Richard", "Joseph",
              "Thomas", "Charles", "Donald", "George", "Kenneth", "Paul", "Edward", "Ronald",
              "Frank", "Raymond", "Walter", "Harold", "Jose", "Luis", "Carl", "Arthur",
              "Gerald", "Henry", "Ralph", "Eugene", "Samuel", "Albert"]
LAST_NAMES = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
              "Rodriguez", "Martinez", "Wilson", "Anderson", "Taylor", "Thomas", "Moore",
              "Jackson", "Martin", "Lee", "Thompson", "White", "Harris", "Clark", "Lewis",
              "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Hill",
              "Green", "Adams", "Baker", "Nelson", "Carter", "Mitchell", "Perez", "Roberts",
              "Turner", "Phillips", "Campbell", "Parker", "Evans", "Edwards", "Collins",
              "Stewart", "Murphy", "Cook", "Rogers", "Morgan", "Cooper", "Reed", "Bailey",
              "Kelly", "Howard", "Ward", "Cox", "Rivera", "O'Brien"]
STREETS = ["Maple", "Oak", "Washington", "Lake", "Hill", "Park", "Elm", "Pine", "Cedar",
           "Main", "Church", "River", "Spring", "Ridge", "Highland", "Union", "Mill",
           "Prospect", "Broad", "Chestnut", "Willow", "Madison", "Franklin", "Jefferson"]
STREET_SUFFIXES = ["St", "Ave", "Rd", "Ln", "Dr", "Ct", "Blvd", "Way"]
CITIES = [  # city, state, ZIP prefix, weight (the practice is near Albany, NY)
    ("Albany", "NY", "122", 8), ("Schenectady", "NY", "123", 5), ("Troy", "NY", "121", 4),
    ("Saratoga Springs", "NY", "128", 3), ("Kingston", "NY", "124", 2),
    ("Poughkeepsie", "NY", "126", 2), ("Pittsfield", "MA", "012", 2),
    ("Springfield", "MA", "011", 1), ("Bennington", "VT", "052", 1), ("Hartford", "CT", "061", 1),
]
MBI_ALPHA = "ACDEFGHJKMNPQRTUVWXY"  # CMS excludes S, L, O, I, B, Z
MBI_REGEX = re.compile(
    r"^[1-9][AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9][0-9][AC-HJKMNP-RT-Y]"
    r"[AC-HJKMNP-RT-Y0-9][0-9][AC-HJKMNP-RT-Y]{2}[0-9]{2}$")

EPOCH = date(1970, 1, 1)
DAY = 86_400
NEVER = np.iinfo(np.int32).max  # epoch-day sentinel for "no such date"


@dataclass
class GenerateResult:
    out: Path
    drops: list[str]
    activities_total: int          # activity rows written across all drops
    unique_activities: int         # distinct activity_ids written
    planted: dict[str, int]        # defect kind -> activities (rows for the row kinds)
    last_drop_date: date
    start_month: str
    months: int
    patients: int
    fmt: str
    rates: dict[str, float] = field(default_factory=lambda: dict(DEFECT_RATES))


# --- identifiers ----------------------------------------------------------------

def npi_with_check_digit(first9: str) -> str:
    """NPI = 9 digits + Luhn check digit computed over the '80840' prefix + those 9."""
    if len(first9) != 9 or not first9.isdigit():
        raise ValueError(f"NPI stem must be 9 digits, got {first9!r}")
    return first9 + str(_luhn_check_digit("80840" + first9))


def valid_npi(npi: str) -> bool:
    return len(npi) == 10 and npi.isdigit() and npi_with_check_digit(npi[:9]) == npi


def _luhn_check_digit(payload: str) -> int:
    total = 0
    for i, ch in enumerate(reversed(payload)):  # rightmost payload digit is doubled
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return (10 - total % 10) % 10


def _padded_ids(prefix: str, numbers: np.ndarray, width: int) -> pl.Series:
    digits = pl.Series(numbers.astype(np.int64)).cast(pl.String).str.zfill(width)
    return pl.select(pl.concat_str(pl.lit(prefix), digits)).to_series()


def _pick(values: list[str], idx: np.ndarray) -> pl.Series:
    return pl.Series(values, dtype=pl.String).gather(idx)


def _mbis(rng: np.random.Generator, n: int) -> pl.Series:
    digits, alpha, alnum = "0123456789", MBI_ALPHA, "0123456789" + MBI_ALPHA
    positions = ["123456789", alpha, alnum, digits, alpha, alnum, digits, alpha, alpha, digits, digits]

    def draw(k: int) -> pl.Series:
        cols = [_pick(list(chars), rng.integers(0, len(chars), k)) for chars in positions]
        return pl.select(pl.concat_str(cols)).to_series()

    mbis = draw(n)
    while (dup := mbis.is_duplicated()).any():  # astronomically rare, but MBIs are keys
        idx = np.flatnonzero(dup.to_numpy())[1:]
        mbis = mbis.scatter(idx, draw(len(idx)))
    return mbis


# --- dates ----------------------------------------------------------------------

def _epoch_day(d: date) -> int:
    return (d - EPOCH).days


def _add_months(d: date, n: int) -> date:
    y, m = divmod(d.year * 12 + d.month - 1 + n, 12)
    return date(y, m + 1, 1)


def _dates(days: np.ndarray, valid: np.ndarray | None = None) -> pl.Series:
    s = pl.Series(days.astype(np.int32)).cast(pl.Date)
    if valid is not None:
        s = pl.select(pl.when(pl.Series(valid)).then(s)).to_series()
    return s


def drop_dates(first_month: date, months: int) -> list[date]:
    """Weekly drops from the 3rd of the first month, then a final drop once every
    generated month has closed (even under the pipeline's maximum grace)."""
    final = _add_months(first_month, months) + timedelta(days=FINAL_DROP_DAYS_AFTER_CLOSE)
    d, out = first_month.replace(day=FIRST_DROP_DAY), []
    while d < final:
        out.append(d)
        d += timedelta(days=DROP_EVERY_DAYS)
    return out + [final]


def _business_days(first_month: date, months: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat array of Mon-Fri epoch days for all months, with per-month offset and count."""
    flat, offsets, counts = [], [], []
    for k in range(months):
        lo, hi = _epoch_day(_add_months(first_month, k)), _epoch_day(_add_months(first_month, k + 1))
        days = np.arange(lo, hi)
        days = days[(days + 3) % 7 < 5]  # 1970-01-01 was a Thursday (weekday 3)
        offsets.append(sum(counts))
        counts.append(len(days))
        flat.append(days)
    return np.concatenate(flat), np.array(offsets), np.array(counts)


# --- reference tables -------------------------------------------------------------

@dataclass
class _Practice:
    staff: pl.DataFrame
    patients: pl.DataFrame
    conditions: pl.DataFrame
    consents: pl.DataFrame
    care_plans: pl.DataFrame          # with internal columns for the per-drop snapshot
    encounters: pl.DataFrame
    team: np.ndarray                  # per patient
    practitioner_slot: np.ndarray     # per patient: 0..2 within the team
    consent_day: np.ndarray           # per patient, epoch day (NEVER if none)
    revoked_day: np.ndarray           # per patient, epoch day (NEVER if none)
    complex_patient: np.ndarray       # per patient bool



def _build_staff(rng: np.random.Generator, n_teams: int) -> pl.DataFrame:
    n = n_teams * len(TEAM_ROLES)
    roles = TEAM_ROLES * n_teams
    first = _pick(FEMALE_FIRST + MALE_FIRST, rng.integers(0, len(FEMALE_FIRST) + len(MALE_FIRST), n))
    last = _pick(LAST_NAMES, rng.integers(0, len(LAST_NAMES), n))
    npis: list[str | None] = []
    seen: set[str] = set()
    for role in roles:  # a few hundred practitioners at most
        if role in ("physician", "np"):
            npi = npi_with_check_digit("1" + "".join(map(str, rng.integers(0, 10, 8))))
            while npi in seen:
                npi = npi_with_check_digit("1" + "".join(map(str, rng.integers(0, 10, 8))))
            seen.add(npi)
            npis.append(npi)
        else:
            npis.append(None)
    return pl.DataFrame({
        "staff_id": _padded_ids("S", np.arange(1, n + 1), 4),
        "full_name": pl.select(pl.concat_str(first, pl.lit(" "), last)).to_series(),
        "role": roles,
        "npi": pl.Series(npis, dtype=pl.String),
    })


def _build_practice(rng: np.random.Generator, n_patients: int, first_month: date,
                    months: int) -> _Practice:
    P = n_patients
    start = _epoch_day(first_month)
    end = _epoch_day(_add_months(first_month, months))
    n_teams = max(1, round(P / PATIENTS_PER_TEAM))
    staff = _build_staff(rng, n_teams)
    team = np.arange(P) % n_teams
    practitioner_slot = rng.choice(PRACTITIONER_SLOTS, P, p=[0.45, 0.35, 0.20])
    npi_of = staff["npi"].gather(team * len(TEAM_ROLES) + practitioner_slot)
    patient_id = _padded_ids("P", np.arange(1, P + 1), 7)

    # patients
    sex = rng.choice(np.array(["F", "M", "U"]), P, p=[0.52, 0.47, 0.01])
    first = pl.select(pl.when(pl.Series(sex == "M"))
                      .then(_pick(MALE_FIRST, rng.integers(0, len(MALE_FIRST), P)))
                      .otherwise(_pick(FEMALE_FIRST, rng.integers(0, len(FEMALE_FIRST), P)))).to_series()
    age_years = np.where(rng.random(P) < 0.88, 65 + rng.gamma(2.0, 5.0, P).clip(0, 37),
                         rng.uniform(35, 64, P))  # under-65s: disability Medicare, other payers
    birth = start - (age_years * 365.25).astype(np.int64) - rng.integers(0, 365, P)
    city_w = np.array([c[3] for c in CITIES], float)
    city = rng.choice(len(CITIES), P, p=city_w / city_w.sum())
    zip5 = pl.select(pl.concat_str(_pick([c[2] for c in CITIES], city),
                                   pl.Series(rng.integers(1, 100, P)).cast(pl.String).str.zfill(2))).to_series()
    plus4 = pl.Series(rng.integers(1000, 10000, P)).cast(pl.String)
    line2 = pl.select(pl.concat_str(pl.lit("Apt "), pl.Series(rng.integers(1, 40, P)).cast(pl.String),
                                    _pick(list("ABCD"), rng.integers(0, 4, P)))).to_series()
    patients = pl.DataFrame({
        "patient_id": patient_id,
        "mbi": _mbis(rng, P),
        "first_name": first,
        "last_name": _pick(LAST_NAMES, rng.integers(0, len(LAST_NAMES), P)),
        "birth_date": _dates(birth),
        "sex": sex,
        "address_line1": pl.select(pl.concat_str(
            pl.Series(rng.integers(1, 9000, P)).cast(pl.String), pl.lit(" "),
            _pick(STREETS, rng.integers(0, len(STREETS), P)), pl.lit(" "),
            _pick(STREET_SUFFIXES, rng.integers(0, len(STREET_SUFFIXES), P)))).to_series(),
        "address_line2": pl.select(pl.when(pl.Series(rng.random(P) < 0.10)).then(line2)).to_series(),
        "city": _pick([c[0] for c in CITIES], city),
        "state": _pick([c[1] for c in CITIES], city),
        "zip": pl.select(pl.when(pl.Series(rng.random(P) < 0.15))
                         .then(pl.concat_str(zip5, pl.lit("-"), plus4)).otherwise(zip5)).to_series(),
        "primary_payer": _pick(PAYERS, rng.choice(len(PAYERS), P, p=PAYER_WEIGHTS)),
    })

    # conditions: weighted sampling without replacement via Gumbel-top-k
    n_codes = len(CHRONIC_CODES)
    w = np.array([c[2] for c in CHRONIC_CODES], float)
    ranks = np.argsort(-(np.log(w) + rng.gumbel(size=(P, n_codes))), axis=1)
    k = np.where(rng.random(P) < 0.10, 1, rng.choice([2, 3, 4, 5], P, p=[0.3, 0.3, 0.25, 0.15]))
    take = np.arange(n_codes)[None, :] < k[:, None]
    c_patient = np.repeat(np.arange(P), k)
    c_code = ranks[take]
    nc = len(c_code)
    c_onset = start - rng.integers(200, 15 * 365, nc)
    c_resolved = np.where(rng.random(nc) < 0.02,  # a chronic problem occasionally resolves
                          np.maximum(start + rng.integers(-300, end - start, nc), c_onset + 90), NEVER)
    u = rng.random(nc)
    c_chronic = np.where(u < 0.12, 1, np.where(u < 0.13, 0, -1))  # mostly empty
    # acute problems, mostly resolved within weeks; onset may fall inside the window
    acute = rng.random(P) < 0.20
    a_patient = np.flatnonzero(acute)
    na = len(a_patient)
    a_code = rng.integers(0, len(ACUTE_CODES), na)
    a_onset = start + rng.integers(-330, end - start, na)
    a_resolved = np.where(rng.random(na) < 0.8, a_onset + rng.integers(10, 35, na), NEVER)
    a_chronic = np.where(rng.random(na) < 0.4, 0, -1)
    codes = [c[0] for c in CHRONIC_CODES] + [c[0] for c in ACUTE_CODES]
    descs = [c[1] for c in CHRONIC_CODES] + [c[1] for c in ACUTE_CODES]
    cond_code = np.concatenate([c_code, n_codes + a_code])
    onset = np.concatenate([c_onset, a_onset])
    resolved = np.concatenate([c_resolved, a_resolved])
    chronic = np.concatenate([c_chronic, a_chronic])
    onset_known = np.concatenate([rng.random(nc) < 0.7, np.ones(na, bool)])
    conditions = pl.DataFrame({
        "patient_id": patient_id.gather(np.concatenate([c_patient, a_patient])),
        "icd10_code": _pick(codes, cond_code),
        "description": pl.select(pl.when(pl.Series(rng.random(nc + na) < 0.9))
                                 .then(_pick(descs, cond_code))).to_series(),
        "onset_date": _dates(onset, onset_known),
        "resolved_date": _dates(np.minimum(resolved, 10**6), resolved != NEVER),
        "chronic": pl.select(pl.when(pl.Series(chronic >= 0))  # -1 = left empty
                             .then(pl.Series(chronic == 1))).to_series(),
        "_onset": onset, "_resolved": resolved,
    }).sort("patient_id", "icd10_code", maintain_order=True)

    # consents: most before the window, some during the first month (time before it exists)
    consented = rng.random(P) < 0.90
    in_first = rng.random(P) < 0.12
    first_len = _epoch_day(_add_months(first_month, 1)) - start
    consent_day = np.where(in_first, start + rng.integers(1, max(2, first_len - 5), P),
                           start - rng.integers(1, 900, P))
    revoke = consented & (rng.random(P) < 0.03)
    revoked_day = np.maximum(consent_day + 5, start + rng.integers(10, max(11, end - start - 3), P))
    revoke &= revoked_day < end
    consent_day = np.where(consented, consent_day, NEVER)
    revoked_day = np.where(revoke, revoked_day, NEVER)
    ci = np.flatnonzero(consented)
    consents = pl.DataFrame({
        "patient_id": patient_id.gather(ci),
        "consent_date": _dates(consent_day[ci]),
        "method": rng.choice(np.array(["verbal", "written"]), len(ci), p=[0.8, 0.2]),
        "billing_npi": npi_of.gather(ci),
        "revoked_date": _dates(np.minimum(revoked_day[ci], 10**6), revoke[ci]),
        "_consent": consent_day[ci], "_revoked": revoked_day[ci],
    })

    # care plans: ~3% none; ~10% (consented) get a substantial, complex revision in one month
    has_plan = rng.random(P) >= 0.03
    established = np.where(consented & in_first, consent_day + rng.integers(0, 4, P),
                           np.minimum(np.where(consented, consent_day, start - 400)
                                      + rng.integers(0, 30, P), start - 1))
    complex_patient = has_plan & consented & (rng.random(P) < 0.10)
    rev_month = rng.integers(0, months, P)
    rev_month_start = np.array([_epoch_day(_add_months(first_month, int(m))) for m in range(months)])
    substantial_day = rev_month_start[rev_month] + rng.integers(0, 25, P)
    minor = has_plan & ~complex_patient & (rng.random(P) < 0.06)
    revised = np.where(complex_patient, np.maximum(substantial_day, established + 1),
                       np.where(minor, start + rng.integers(-200, end - start, P), NEVER))
    revised = np.where(revised > established, revised, NEVER)
    shared = np.where(rng.random(P) < 0.85, established + rng.integers(0, 10, P), NEVER)
    pi = np.flatnonzero(has_plan)
    care_plans = pl.DataFrame({
        "plan_id": _padded_ids("CP", np.arange(1, len(pi) + 1), 7),
        "patient_id": patient_id.gather(pi),
        "_established": established[pi], "_revised": revised[pi], "_shared": shared[pi],
        "_revision": np.where(complex_patient, "substantial", np.where(minor, "minor", "none"))[pi],
        "_complexity": np.where(complex_patient, "complex", "standard")[pi],
    })

    # encounters: an initiating visit within 12 months before the window for ~95%,
    # by the consent's practitioner; some office visits during the window.
    u = rng.random(P)
    init_day = np.where(u < 0.95, start - rng.integers(10, 360, P), start - rng.integers(400, 700, P))
    has_init = u < 0.98  # 0.95-0.98: only an old visit; 0.98+: none at all
    n_extra = rng.poisson(0.15 * months, P)
    e_patient = np.concatenate([np.flatnonzero(has_init), np.repeat(np.arange(P), n_extra)])
    e_day = np.concatenate([init_day[has_init], start + rng.integers(0, end - start, n_extra.sum())])
    n_init, ne = int(has_init.sum()), len(e_patient)
    e_cpt = np.concatenate([rng.choice(4, n_init, p=[0.45, 0.35, 0.05, 0.15]),
                            rng.choice(2, ne - n_init, p=[0.6, 0.4])])
    order = np.lexsort((e_day, e_patient))
    e_patient, e_day, e_cpt = e_patient[order], e_day[order], e_cpt[order]
    encounters = pl.DataFrame({
        "encounter_id": _padded_ids("E", np.arange(1, ne + 1), 8),
        "patient_id": patient_id.gather(e_patient),
        "encounter_date": _dates(e_day),
        "cpt_code": _pick(["99213", "99214", "G0438", "G0439"], e_cpt),
        "rendering_npi": pl.select(pl.when(pl.Series(rng.random(ne) < 0.98))
                                   .then(npi_of.gather(e_patient))).to_series(),
        "_day": e_day,
    })
    return _Practice(staff, patients, conditions, consents, care_plans, encounters, team,
                     practitioner_slot, consent_day, revoked_day, complex_patient)


def _snapshot(practice: _Practice, table: str, drop_day: int) -> pl.DataFrame:
    """A full export as the EHR would have produced it on `drop_day` (things dated
    after it do not exist yet; revisions show only once made)."""
    cutoff = drop_day + 1  # a drop holds everything dated up to and including its day
    if table == "patients":
        return practice.patients
    if table == "staff":
        return practice.staff
    if table == "conditions":
        c = practice.conditions.filter(pl.col("_onset") < cutoff)
        return c.with_columns(pl.when(pl.col("_resolved") < cutoff).then(pl.col("resolved_date"))
                              .alias("resolved_date")).select(COLUMNS[table])
    if table == "consents":
        c = practice.consents.filter(pl.col("_consent") < cutoff)
        return c.with_columns(pl.when(pl.col("_revoked") < cutoff).then(pl.col("revoked_date"))
                              .alias("revoked_date")).select(COLUMNS[table])
    if table == "care_plans":
        revised = pl.col("_revised") < cutoff
        return (practice.care_plans.filter(pl.col("_established") < cutoff).select(
            "plan_id", "patient_id",
            pl.col("_established").cast(pl.Int32).cast(pl.Date).alias("established_date"),
            pl.when(revised).then(pl.col("_revised").clip(upper_bound=10**6).cast(pl.Int32)
                                  .cast(pl.Date)).alias("revised_date"),
            pl.when(revised).then(pl.col("_revision")).otherwise(pl.lit("none")).alias("revision"),
            pl.when(revised).then(pl.col("_complexity")).otherwise(pl.lit("standard")).alias("complexity"),
            pl.when(pl.col("_shared") < cutoff).then(pl.col("_shared").clip(upper_bound=10**6)
                                                     .cast(pl.Int32).cast(pl.Date))
            .alias("shared_with_patient_date")))
    if table == "encounters":
        return practice.encounters.filter(pl.col("_day") < cutoff).select(COLUMNS[table])
    raise KeyError(table)


# --- activities --------------------------------------------------------------------

def _template_table() -> tuple[list[str], list[list[str]], list[list[str]], np.ndarray, np.ndarray]:
    """Split templates into literal parts and slot kinds (at most two slots each)."""
    parts: list[list[str]] = [[], [], []]
    kinds: list[list[str]] = [[], []]
    offsets, counts = [], []
    for t in ACTIVITY_TYPES:
        offsets.append(len(parts[0]))
        counts.append(len(NOTE_TEMPLATES[t]))
        for text in NOTE_TEMPLATES[t]:
            pieces = re.split(r"\{(\w+)\}", text) + ["", ""] * 2
            for j in range(3):
                parts[j].append(pieces[2 * j])
            for j in range(2):
                kinds[j].append(pieces[2 * j + 1])
    vocab_kinds = [""] + list(VOCAB)
    return vocab_kinds, parts, kinds, np.array(offsets), np.array(counts)


def _notes(rng: np.random.Generator, types: np.ndarray, durations: np.ndarray) -> pl.Series:
    """Specific notes from templates, fully vectorised (gathers + one concat_str)."""
    n = len(types)
    vocab_kinds, parts, kinds, t_off, t_cnt = _template_table()
    tid = t_off[types] + (rng.random(n) * t_cnt[types]).astype(np.int64)
    flat = [""] + [v for k in vocab_kinds[1:] for v in VOCAB[k]]
    sizes = np.array([1] + [len(VOCAB[k]) for k in vocab_kinds[1:]])
    v_off = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    slot_values = []
    for j in range(2):
        kind = np.array([vocab_kinds.index(k) for k in kinds[j]])[tid]
        slot_values.append(pl.Series(flat).gather(v_off[kind] + rng.integers(0, 1 << 30, n) % sizes[kind]))
    with_minutes = pl.Series(rng.random(n) < 0.6)
    suffix = pl.select(pl.when(with_minutes).then(pl.concat_str(
        pl.lit(" Duration: "), pl.Series(durations).cast(pl.String), pl.lit(" minutes.")))
        .otherwise(pl.lit(""))).to_series()
    return pl.select(pl.concat_str(_pick(parts[0], tid), slot_values[0], _pick(parts[1], tid),
                                   slot_values[1], _pick(parts[2], tid), suffix)).to_series()


def _timestamps(local_sec: pl.Series, kind: pl.Series) -> pl.Series:
    """ISO strings: 0 = naive practice-local, 1 = local with offset, 2 = UTC with Z."""
    local = pl.from_epoch(pl.col("s"), time_unit="s")
    utc = (local.dt.replace_time_zone(TIME_ZONE, ambiguous="earliest", non_existent="null")
           .dt.convert_time_zone("UTC").dt.replace_time_zone(None))
    off = (local - utc).dt.total_minutes()
    off_str = pl.concat_str(pl.when(off < 0).then(pl.lit("-")).otherwise(pl.lit("+")),
                            (off.abs() // 60).cast(pl.String).str.zfill(2), pl.lit(":"),
                            (off.abs() % 60).cast(pl.String).str.zfill(2))
    fmt = "%Y-%m-%dT%H:%M:%S"
    expr = (pl.when((pl.col("k") == 1) & utc.is_not_null()).then(pl.concat_str(local.dt.strftime(fmt), off_str))
            .when((pl.col("k") == 2) & utc.is_not_null()).then(pl.concat_str(utc.dt.strftime(fmt), pl.lit("Z")))
            .otherwise(local.dt.strftime(fmt)))  # DST gap: fall back to naive local
    return pl.DataFrame({"s": local_sec, "k": kind}).select(expr).to_series()


def _activity_versions(rng: np.random.Generator, practice: _Practice, first_month: date,
                       months: int, fmt: str
                       ) -> tuple[pl.DataFrame, dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Every version of every activity row (original, amendment, void) with the
    internal `_version_at` / `_superseded_at` (local epoch seconds) that decide which
    drops carry it. Returns the frame, per-original defect masks, and for each version
    row (`_row`) its original activity index and kind (0 original, 1 amendment, 2 void)."""
    P, M = len(practice.team), months
    bdays, bd_off, bd_cnt = _business_days(first_month, months)
    month_start = np.array([_epoch_day(_add_months(first_month, m)) for m in range(M + 1)])

    # patient-months: who is worked on, and how many minutes that month
    m_start = month_start[None, :M]
    m_end = month_start[None, 1:]
    consent, revoked = practice.consent_day[:, None], practice.revoked_day[:, None]
    enrolled = (consent < m_end) & (m_start <= revoked)
    p_active = np.where(enrolled, 0.93, np.where(consent < m_end, 0.20, 0.25))
    active = (rng.random((P, M)) < p_active).ravel()
    u = rng.random((P, M))
    standard = np.select(
        [u < 0.12, u < 0.37, u < 0.77, u < 0.92],
        [rng.integers(3, 15, (P, M)), rng.integers(15, 20, (P, M)), rng.integers(20, 40, (P, M)),
         rng.integers(40, 60, (P, M))], rng.integers(60, 86, (P, M)))
    complex_min = np.where(rng.random((P, M)) < 0.08, rng.integers(45, 60, (P, M)),
                           rng.integers(60, 121, (P, M)))
    target = np.where(practice.complex_patient[:, None], complex_min, standard).ravel()
    per_act = np.where(practice.complex_patient[:, None], rng.uniform(15, 25, (P, M)),
                       rng.uniform(6, 16, (P, M))).ravel()
    lo_n = np.repeat(np.where(practice.complex_patient, 3, 1), M)
    n_acts = np.where(active, np.clip(np.ceil(target / per_act), lo_n, 6), 0).astype(np.int64)

    # split each patient-month's minutes over its activities (gamma weights: geometric-ish)
    pm = np.repeat(np.arange(P * M), n_acts)
    N = len(pm)
    group = np.repeat(np.arange(np.count_nonzero(n_acts)), n_acts[n_acts > 0])
    w = rng.gamma(1.5, 1.0, N)
    share = w / np.bincount(group, w)[group]
    dur = np.floor(target[pm] * share).astype(np.int64)
    first_of_group = np.r_[True, group[1:] != group[:-1]]
    rest = target[n_acts > 0] - np.bincount(group, dur).astype(np.int64)
    dur[first_of_group] += rest
    dur = np.maximum(dur, 2)
    patient, month = pm // M, pm % M

    # who and which day
    types = rng.choice(len(ACTIVITY_TYPES), N, p=ACTIVITY_TYPE_WEIGHTS)
    slot = ACTIVITY_STAFF_SLOTS[rng.choice(len(ACTIVITY_STAFF_SLOTS), N, p=ACTIVITY_STAFF_WEIGHTS)]
    slot = np.where(slot < 0, practice.practitioner_slot[patient], slot)
    staff = practice.team[patient] * len(TEAM_ROLES) + slot
    day = bdays[bd_off[month] + (rng.random(N) * bd_cnt[month]).astype(np.int64)]

    # lay each staff member's day out back to back with gaps, from ~8:00, so
    # overlaps only exist where planted
    order = np.lexsort((rng.random(N), day, staff))
    slot_min = (dur + rng.integers(3, 40, N))[order]
    new_group = np.r_[True, (staff[order][1:] != staff[order][:-1]) | (day[order][1:] != day[order][:-1])]
    gfirst = np.maximum.accumulate(np.where(new_group, np.arange(N), 0))
    cs = np.cumsum(slot_min)
    offset_min = cs - slot_min - (cs[gfirst] - slot_min[gfirst])
    start_min = np.empty(N, np.int64)
    start_min[order] = 480 + rng.integers(0, 60, N)[gfirst] + offset_min
    # staff_overlap: start inside the same person's previous entry that day
    prev = np.r_[-1, order[:-1]]
    can_overlap = np.zeros(N, bool)
    can_overlap[order] = ~new_group
    # only entries after the first of a staff-day can overlap: scale so the overall rate holds
    overlap = can_overlap & (rng.random(N) < DEFECT_RATES["staff_overlap"] / max(can_overlap.mean(), 0.01))
    prev_of = np.empty(N, np.int64)
    prev_of[order] = prev
    po = prev_of[overlap]
    start_min[overlap] = start_min[po] + 1 + (rng.random(len(po)) * (dur[po] - 1)).astype(np.int64)
    start_sec = day * DAY + start_min * 60
    in_overlap = overlap.copy()
    in_overlap[po] = True  # both sides keep their staff and duration, so the overlap stays

    # planted defects
    r = lambda: rng.random(N)  # noqa: E731 - one fresh uniform per defect kind
    non_clinical = ~in_overlap & (r() < DEFECT_RATES["non_clinical_staff"])
    staff = np.where(non_clinical, practice.team[patient] * len(TEAM_ROLES)
                     + rng.choice(NON_CLINICAL_SLOTS, N), staff)
    face_to_face = ~non_clinical & (r() < DEFECT_RATES["face_to_face"])
    vague = r() < DEFECT_RATES["vague_note"]
    implausible = ~in_overlap & (r() < DEFECT_RATES["implausible_duration"])
    true_dur = dur
    dur = np.where(implausible, np.where(r() < 0.5, 0, 300), dur)
    u = r()
    c1 = DEFECT_RATES["late_documentation"]
    c2 = c1 + DEFECT_RATES["very_late_documentation"]
    c3 = c2 + DEFECT_RATES["documented_before_activity"]
    late, very_late, before = u < c1, (u >= c1) & (u < c2), (u >= c2) & (u < c3)
    lag = np.minimum(60 + rng.exponential(2700, N), 10 * 3600).astype(np.int64)  # minutes to hours
    lag = np.where(late, 2 * DAY + rng.integers(0, 5 * DAY, N), lag)
    lag = np.where(very_late, 8 * DAY + rng.integers(0, 12 * DAY, N), lag)
    doc_sec = np.where(before, start_sec - rng.integers(300, 7200, N), start_sec + dur * 60 + lag)
    malformed = r() < DEFECT_RATES["malformed"]
    malformed_kind = rng.integers(0, len(MALFORMED_KINDS), N)
    if fmt != "csv":  # drawn either way so csv and parquet runs hold the same data
        malformed[:] = False
    ts_kind = rng.choice(3, N, p=[1 - OFFSET_TIMESTAMP_SHARE - UTC_TIMESTAMP_SHARE,
                                  OFFSET_TIMESTAMP_SHARE, UTC_TIMESTAMP_SHARE])
    u = r()
    amended = ~malformed & (u < DEFECT_RATES["amended_note"])
    voided = ~malformed & (u >= DEFECT_RATES["amended_note"]) & (
        u < DEFECT_RATES["amended_note"] + DEFECT_RATES["voided"])
    status_active = r() < 0.10

    # ids follow creation (documentation) order, as an EHR sequence would
    act_no = np.empty(N, np.int64)
    act_no[np.argsort(doc_sec, kind="stable")] = np.arange(1, N + 1)

    good = _notes(rng, types, true_dur)  # an implausible figure is a typo in the minutes field
    note = pl.select(
        pl.when(pl.Series(non_clinical)).then(_pick(NON_CLINICAL_NOTES, rng.integers(0, len(NON_CLINICAL_NOTES), N)))
        .when(pl.Series(vague)).then(_pick(VAGUE_NOTES, rng.integers(0, len(VAGUE_NOTES), N)))
        .when(pl.Series(face_to_face)).then(pl.concat_str(pl.lit("In-office visit: "), good))
        .otherwise(good)).to_series()

    # later versions: amendments (new note, newer documented_at) and voids, both made
    # more than a week after the original so they reach a later drop than it did
    am, vo = np.flatnonzero(amended), np.flatnonzero(voided)
    am_at = doc_sec[am] + 7 * DAY + rng.integers(3600, 10 * DAY, len(am))
    vo_at = doc_sec[vo] + 7 * DAY + rng.integers(3600, 10 * DAY, len(vo))
    am_note = pl.select(pl.concat_str(
        pl.lit("Amended "), _dates(am_at // DAY).cast(pl.String), pl.lit(": "),
        _notes(rng, types[am], true_dur[am]))).to_series()

    src = np.concatenate([np.arange(N), am, vo])  # original row behind each version
    kind = np.concatenate([np.zeros(N, np.int8), np.ones(len(am), np.int8), np.full(len(vo), 2, np.int8)])
    version_at = np.concatenate([doc_sec, am_at, vo_at])
    doc_v = np.concatenate([doc_sec, am_at, doc_sec[vo]])  # a void leaves the note as it was
    # a version stops being exported once a newer version of the activity exists
    o = np.lexsort((version_at, src))
    superseded = np.full(len(src), np.iinfo(np.int64).max)
    same_next = src[o][1:] == src[o][:-1]
    superseded[o[:-1][same_next]] = version_at[o][1:][same_next]

    mal = malformed[src] & (kind == 0)
    mk = malformed_kind[src]
    patient_ids = practice.patients["patient_id"].gather(patient[src])
    started = _timestamps(pl.Series(start_sec[src]), pl.Series(ts_kind[src]))
    year = _dates(start_sec[src] // DAY).dt.year().cast(pl.String)
    started_bad = pl.select(pl.when(pl.Series(act_no[src] % 2 == 0))  # two unparseable shapes
                            .then(pl.concat_str(pl.lit("31/02/"), year))
                            .otherwise(pl.concat_str(year, pl.lit("-02-30T10:15:00")))).to_series()
    versions = pl.DataFrame({
        "activity_id": _padded_ids("A", act_no[src], 9),
        "patient_id": pl.select(pl.when(pl.Series(mal & (mk == 2))).then(pl.lit(UNKNOWN_PATIENT_ID))
                                .otherwise(patient_ids)).to_series(),
        "staff_id": practice.staff["staff_id"].gather(staff[src]),
        "started_at": pl.select(pl.when(pl.Series(mal & (mk == 0))).then(started_bad)
                                .otherwise(started)).to_series(),
        "duration_minutes": np.where(mal & (mk == 1), -np.maximum(dur[src], 1), dur[src]),
        "activity_type": _pick(ACTIVITY_TYPES, types[src]),
        "face_to_face": face_to_face[src],
        "note": pl.concat([note, am_note, note.gather(vo)]),
        "documented_at": _timestamps(pl.Series(doc_v), pl.Series(ts_kind[src])),
        "status": pl.select(pl.when(pl.Series(kind == 2)).then(pl.lit("voided"))
                            .when(pl.Series(status_active[src])).then(pl.lit("active"))).to_series(),
        "_version_at": version_at, "_superseded_at": superseded, "_row": np.arange(len(src)),
    }).sort("_version_at", "_row")
    masks = {
        "vague_note": vague, "late_documentation": late, "very_late_documentation": very_late,
        "documented_before_activity": before, "face_to_face": face_to_face,
        "non_clinical_staff": non_clinical, "staff_overlap": overlap,
        "implausible_duration": implausible, "amended_note": amended, "voided": voided,
        **{k: malformed & (malformed_kind == i) for i, k in enumerate(MALFORMED_KINDS)},
        "timestamp_with_offset": ts_kind == 1, "timestamp_utc_z": ts_kind == 2,
    }
    return versions, masks, src, kind


# --- writing ---------------------------------------------------------------------------

def _write_atomic(frame: pl.DataFrame, path: Path, fmt: str) -> None:
    """Readers (or a DAG sensor) never see a half-written file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if fmt == "csv":
        frame.write_csv(tmp)  # RFC 4180 quoting, nulls as empty fields
    else:
        frame.write_parquet(tmp)
    os.replace(tmp, path)


def generate(out: Path, patients: int = 500, months: int = 3, seed: int = 1,
             start: str | None = None, fmt: str = "csv") -> GenerateResult:
    out = Path(out)
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"format must be csv or parquet, got {fmt!r}")
    if not 1 <= patients < 10_000_000 or months < 1:
        raise ValueError("need 1 <= patients < 10,000,000 and months >= 1")
    if start is None:
        first_month = _add_months(DEFAULT_END_MONTH, -months)
    else:
        if not re.fullmatch(r"\d{4}-\d{2}", start):
            raise ValueError(f"start must be YYYY-MM, got {start!r}")
        first_month = date(int(start[:4]), int(start[5:]), 1)
    schedule = drop_dates(first_month, months)
    names = [d.isoformat() for d in schedule]
    if out.exists():  # stale drops from another run would win "newest drop" and corrupt the data
        stray = sorted(p.name for p in out.iterdir()
                       if p.is_dir() and re.fullmatch(r"\d{4}-\d{2}-\d{2}", p.name) and p.name not in names)
        if stray:
            raise ValueError(f"{out} holds drops this run would not write ({', '.join(stray[:3])}...); "
                             "remove them or choose another --out")

    rng = np.random.default_rng(seed)
    practice = _build_practice(rng, patients, first_month, months)
    versions, masks, src, kind = _activity_versions(rng, practice, first_month, months, fmt)
    version_at = versions["_version_at"].to_numpy()
    superseded = versions["_superseded_at"].to_numpy()
    row = versions["_row"].to_numpy()
    activity_cols = versions.select(COLUMNS["activities"])

    exported = np.zeros(len(row), bool)
    planted = {"duplicate_in_drop": 0, "repeated_across_drops": 0}
    activities_total = 0
    prev_cut = None
    for i, d in enumerate(schedule):
        folder = out / d.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        drop_day = _epoch_day(d)
        for table in TABLES[:-1]:
            _write_atomic(_snapshot(practice, table, drop_day), folder / f"{table}.{fmt}", fmt)
        # this drop: documented since a week before the previous drop's cutoff, up to its own
        cut = (drop_day + 1) * DAY
        lo = np.iinfo(np.int64).min if prev_cut is None else prev_cut - OVERLAP_DAYS * DAY
        a, b = np.searchsorted(version_at, [lo, cut])
        keep = a + np.flatnonzero(superseded[a:b] >= cut)
        planted["repeated_across_drops"] += int(exported[row[keep]].sum())
        exported[row[keep]] = True
        drop_rng = np.random.default_rng([seed, i])
        dups = keep[drop_rng.random(len(keep)) < DEFECT_RATES["duplicate_in_drop"]]
        planted["duplicate_in_drop"] += len(dups)
        rows = np.sort(np.concatenate([keep, dups]), kind="stable")
        frame = activity_cols[rows].sort("activity_id", maintain_order=True)  # export order = id order
        activities_total += frame.height
        _write_atomic(frame, folder / f"activities.{fmt}", fmt)
        prev_cut = cut

    # count planted defects among activities that actually reached a drop
    # (`exported`, `src` and `kind` are all indexed by version row)
    original_exported = np.zeros(len(masks["vague_note"]), bool)
    original_exported[src[(kind == 0) & exported]] = True
    for name, mask in masks.items():
        if name == "amended_note":
            planted[name] = int(exported[kind == 1].sum())
        elif name == "voided":
            planted[name] = int(exported[kind == 2].sum())
        else:
            planted[name] = int((mask & original_exported).sum())
    return GenerateResult(out=out, drops=names, activities_total=activities_total,
                          unique_activities=int(original_exported.sum()), planted=planted,
                          last_drop_date=schedule[-1], start_month=first_month.strftime("%Y-%m"),
                          months=months, patients=patients, fmt=fmt)


def suggest_as_of(landing: Path) -> str:
    """The last drop's name: by then every generated month has closed."""
    drops = sorted(p.name for p in Path(landing).iterdir()
                   if p.is_dir() and re.fullmatch(r"\d{4}-\d{2}-\d{2}", p.name))
    if not drops:
        raise FileNotFoundError(f"{landing}: no drop folders named YYYY-MM-DD")
    return drops[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m transforms.devtools.generate",
                                     description="Write synthetic EHR CCM drops to a landing folder.")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--months", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", help="first month, YYYY-MM (default: the --months months before 2026-11)")
    parser.add_argument("--format", dest="fmt", choices=["csv", "parquet"], default="csv")
    parser.add_argument("--suggest-as-of", type=Path, metavar="DIR",
                        help="print the as-of date (YYYY-MM-DD) that closes every month in DIR, and exit")
    args = parser.parse_args(argv)
    try:
        if args.suggest_as_of:
            print(suggest_as_of(args.suggest_as_of))
            return 0
        if args.out is None:
            parser.error("--out is required")
        result = generate(args.out, args.patients, args.months, args.seed, args.start, args.fmt)
    except (ValueError, FileNotFoundError) as exc:
        print(f"generate: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(result.drops)} drops ({result.drops[0]} .. {result.drops[-1]}) to {result.out}: "
          f"{result.activities_total} activity rows, {result.unique_activities} activities; "
          f"suggested --as-of {result.last_drop_date.isoformat()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

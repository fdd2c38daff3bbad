"""Where the project's own files live (the repo is installed editable)."""
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SQL_DIR = REPO_ROOT / "sql"
EXPECTATIONS_DIR = REPO_ROOT / "expectations"
RULES_DIR = Path(__file__).resolve().parent / "rules"
CONFIG_DIR = Path(__file__).resolve().parent / "config"
SAMPLE_CONFIG = CONFIG_DIR / "practice.sample.yaml"

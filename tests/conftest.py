import sys
from pathlib import Path

# Test helper modules (landing_builder, core_fixtures…) import by plain name.
sys.path.insert(0, str(Path(__file__).parent))

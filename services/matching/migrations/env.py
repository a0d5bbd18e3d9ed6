from services.common.migrations import run_env
from services.matching.tables import metadata

run_env(metadata)

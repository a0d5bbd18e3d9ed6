from services.common.migrations import run_env
from services.events.tables import metadata

run_env(metadata)

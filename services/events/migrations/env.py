from services.common.migrations import run_env
from services.events.tables import metadata
from services.events.webhooks import tables as webhook_tables  # noqa: F401  (their tables join the metadata)

run_env(metadata)

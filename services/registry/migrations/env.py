from services.common.migrations import run_env
from services.registry.certifications import models  # noqa: F401
from services.registry.resources import RESOURCES  # noqa: F401 - registers every table
from services.registry.tables import metadata

run_env(metadata)

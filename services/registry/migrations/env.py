from services.common.migrations import run_env
from services.registry.certifications import models  # noqa: F401
from services.registry.duplicates import models as duplicate_models  # noqa: F401
from services.registry.imports import models as import_models  # noqa: F401
from services.registry.resources import RESOURCES  # noqa: F401 - registers every table
from services.registry.tables import metadata

run_env(metadata)

"""The configuration: one TOML file → frozen dataclasses, validated.

The loader and the dataclasses are in :mod:`.load`, single values in :mod:`.values`,
the defaults in :mod:`.defaults`, ``[limits]``/``[prices]`` and the generation knobs in
:mod:`.limits`, `mediasync init`'s template in :mod:`.template`. Other packages import
the config from here.
"""

from .batch import BATCH_MODES, BatchConfig
from .defaults import DEFAULT_API, DEFAULT_DAEMON, DEFAULT_PROMPTS
from .families import Family, family
from .limits import (
    DEFAULT_PRICES,
    MEDIA_RESOLUTIONS,
    SERVICE_TIERS,
    TIER_FACTORS,
    TIERS,
    KnobRequest,
    Knobs,
    LimitsConfig,
    ModelLimits,
    Price,
)
from .load import (
    RANGES_AUTO,
    ApiConfig,
    Config,
    FolderConfig,
    PromptConfig,
    StorageBudget,
    default_config_path,
    find_api_key,
    load_config,
    load_config_or_default,
    parse_config,
    resolve_api_key,
)
from .observe import (
    EVENTS,
    Listen,
    NotifyConfig,
    check_url,
    describe_url,
    http_token,
    token_matches,
)
from .template import PRESETS, render_init_config
from .values import ConfigError, format_duration, parse_duration

__all__ = [
    "BATCH_MODES",
    "BatchConfig",
    "DEFAULT_API",
    "DEFAULT_DAEMON",
    "DEFAULT_PRICES",
    "DEFAULT_PROMPTS",
    "EVENTS",
    "MEDIA_RESOLUTIONS",
    "PRESETS",
    "SERVICE_TIERS",
    "RANGES_AUTO",
    "TIERS",
    "TIER_FACTORS",
    "ApiConfig",
    "Config",
    "ConfigError",
    "Family",
    "FolderConfig",
    "KnobRequest",
    "Knobs",
    "LimitsConfig",
    "Listen",
    "ModelLimits",
    "NotifyConfig",
    "Price",
    "PromptConfig",
    "check_url",
    "StorageBudget",
    "default_config_path",
    "describe_url",
    "family",
    "find_api_key",
    "format_duration",
    "http_token",
    "load_config",
    "load_config_or_default",
    "parse_config",
    "parse_duration",
    "render_init_config",
    "resolve_api_key",
    "token_matches",
]

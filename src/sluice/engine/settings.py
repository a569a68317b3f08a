"""Engine settings (§1.5) and what one run is started with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class EngineSettings:
    max_steps: int = 500
    max_time_s: float = 1200
    workflow_call_max_depth: int = 5
    iteration_max_parallel: int = 10
    loop_max_count: int = 100
    template_timeout_s: float = 10
    # code node (§4.3): executor limits and output validation limits
    code_cpu_time_s: float = 10
    code_wall_time_s: float = 15
    code_memory_bytes: int = 256 * 1024 * 1024
    code_stdout_bytes: int = 1024 * 1024
    code_enable_network: bool = False
    code_max_string_length: int = 400_000
    code_max_number: int = 9_223_372_036_854_775_807
    code_min_number: int = -9_223_372_036_854_775_808
    code_max_precision: int = 20
    code_max_depth: int = 5
    code_max_number_array_length: int = 1000
    code_max_string_array_length: int = 30
    code_max_object_array_length: int = 30
    # http-request node (§4.5)
    http_connect_timeout_s: float = 10
    http_read_timeout_s: float = 600
    http_write_timeout_s: float = 600
    http_max_redirects: int = 20
    http_max_text_bytes: int = 1024 * 1024
    http_max_file_bytes: int = 10 * 1024 * 1024
    http_allow_private_networks: bool = False
    http_allowed_hosts: tuple[str, ...] = ()


@dataclass(slots=True)
class RunInput:
    """One run's starting values: validated start inputs (§3.6), system variables without the
    ``sys.`` prefix, environment values (secrets as ``Secret``) and conversation values."""

    run_id: str
    inputs: Mapping[str, Any]
    system: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, Any] = field(default_factory=dict)
    conversation: Mapping[str, Any] = field(default_factory=dict)
    segment: int = 0
    first_seq: int = 1

"""``/parameters``: the published version's features and start form, in Dify's shape (§5.7)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluice.settings import ApiSettings

FEATURE_DEFAULTS: dict[str, Any] = {
    "opening_statement": None,
    "suggested_questions": [],
    "suggested_questions_after_answer": {"enabled": False},
    "speech_to_text": {"enabled": False},
    "text_to_speech": {"enabled": False},
    "retriever_resource": {"enabled": False},
    "annotation_reply": {"enabled": False},
    "more_like_this": {"enabled": False},
    "sensitive_word_avoidance": {"enabled": False, "type": "", "configs": []},
    "file_upload": {
        "image": {
            "enabled": False,
            "number_limits": 3,
            "detail": "high",
            "transfer_methods": ["remote_url", "local_file"],
        }
    },
}
FORM_KEYS = (
    "variable",
    "label",
    "type",
    "required",
    "max_length",
    "default",
    "options",
    "hint",
    "placeholder",
    "allowed_file_types",
    "allowed_file_extensions",
    "allowed_file_upload_methods",
)
FORM_TYPES = ("text-input", "paragraph", "select", "number", "checkbox", "json_object", "file", "file-list")


def _file_upload(raw: Any) -> Any:
    """A legacy ``file_upload.image`` that is enabled is flattened into ``file_upload`` (as Dify)."""
    if not isinstance(raw, Mapping):
        return FEATURE_DEFAULTS["file_upload"]
    image = raw.get("image")
    if isinstance(image, Mapping) and image.get("enabled"):
        flat = {k: v for k, v in raw.items() if k != "image"}
        flat.setdefault("enabled", True)
        flat.setdefault("number_limits", image.get("number_limits", 3))
        flat.setdefault("allowed_file_upload_methods", image.get("transfer_methods", []))
        flat.setdefault("allowed_file_types", ["image"])
        flat.setdefault("allowed_file_extensions", [])
        return flat
    return dict(raw)


def form_item(variable: Mapping[str, Any]) -> dict[str, Any]:
    kind = str(variable.get("type", "text-input"))
    kept = {k: variable[k] for k in FORM_KEYS if k in variable and variable[k] is not None}
    kept.setdefault("required", False)
    return {kind: kept}


def app_parameters(
    features: Mapping[str, Any], start_variables: list[Mapping[str, Any]], limits: ApiSettings
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, default in FEATURE_DEFAULTS.items():
        out[key] = features.get(key, default) if key != "file_upload" else _file_upload(features.get(key))
    out["user_input_form"] = [form_item(v) for v in start_variables if v.get("type") in FORM_TYPES]
    out["system_parameters"] = {
        "file_size_limit": limits.upload_file_size_limit,
        "image_file_size_limit": limits.upload_image_file_size_limit,
        "audio_file_size_limit": limits.upload_audio_file_size_limit,
        "video_file_size_limit": limits.upload_video_file_size_limit,
        "workflow_file_upload_limit": limits.workflow_file_upload_limit,
    }
    return out

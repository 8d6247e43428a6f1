"""The server's OpenAPI document (written by hand: the hot path has no pydantic models to
generate it from) and a self-contained `/docs` page rendered from it."""

from __future__ import annotations

import html
from typing import Any

from tether import __version__

__all__ = ["docs_page", "openapi_document"]

_ERROR = {"type": "object", "properties": {"error": {"type": "string"},
                                           "message": {"type": "string"}},
          "required": ["error", "message"]}
_ROW = {"type": "object", "additionalProperties": True}
_SCORING_INPUT: dict[str, Any] = {
    "type": "object",
    "description": "Exactly one of the four MLflow input formats.",
    "properties": {
        "dataframe_split": {"type": "object", "properties": {
            "columns": {"type": "array", "items": {"type": "string"}},
            "data": {"type": "array", "items": {"type": "array"}}}},
        "dataframe_records": {"type": "array", "items": _ROW},
        "instances": {"type": "array", "items": _ROW},
        "inputs": {"oneOf": [{"type": "array", "items": _ROW},
                             {"type": "object", "additionalProperties": {"type": "array"}}]},
    },
}
_PREDICT_INPUT = {**_SCORING_INPUT, "properties": {
    **_SCORING_INPUT["properties"],
    "ids": {"type": "array", "items": {"type": "string", "maxLength": 56},
            "description": "Optional prediction ids, one per row (stable canary routing)."}}}


def _errors(*codes: int) -> dict[str, Any]:
    reasons = {400: "Bad input", 401: "Missing or wrong bearer token",
               403: "Route disabled: its token is not configured", 413: "Too large",
               415: "Unsupported content type", 503: "No model ready, or the model failed"}
    return {str(code): {"description": reasons[code], "content": {
        "application/json": {"schema": _ERROR}}} for code in codes}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _reload(summary: str) -> dict[str, Any]:
    return {"summary": summary, "security": [{"bearer": []}],
            "requestBody": {"required": False, "content": {"application/json": {
                "schema": {"type": "object"}}}},
            "responses": {"200": _json({"type": "object"}), **_errors(400, 401, 403, 413)}}


def openapi_document() -> dict[str, Any]:
    scoring_body = {"required": True, "content": {
        "application/json": {"schema": _SCORING_INPUT},
        "text/csv": {"schema": {"type": "string"}}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "tether model server", "version": __version__,
                 "description": "MLflow's scoring protocol plus tether's prediction ids, "
                                "feedback and readiness."},
        "paths": {
            "/invocations": {"post": {
                "summary": "Score rows as `mlflow models serve` does",
                "requestBody": scoring_body,
                "responses": {"200": _json({"type": "object", "properties": {
                    "predictions": {"type": "array"}}}), **_errors(400, 413, 415, 503)}}},
            "/predict": {"post": {
                "summary": "Score rows; returns a prediction id per row and the version",
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": _PREDICT_INPUT},
                    "text/csv": {"schema": {"type": "string"}}}},
                "responses": {"200": _json({"type": "object", "properties": {
                    "predictions": {"type": "array"},
                    "ids": {"type": "array", "items": {"type": "string"}},
                    "scores": {"type": "array", "items": {"type": "number"},
                               "description": "positive-class probability (two classes)"},
                    "probabilities": {"type": "array", "items": {
                        "type": "array", "items": {"type": "number"}},
                        "description": "class probabilities per row, in the model's "
                                       "class order (more than two classes)"},
                    "model_version": {"type": "integer"},
                    "route": {"type": "string", "enum": ["champion", "canary"]}},
                    "required": ["predictions", "ids", "model_version", "route"]}),
                    **_errors(400, 413, 415, 503)}}},
            "/feedback": {"post": {
                "summary": "Labels by prediction id; written before the answer (bearer "
                           "TETHER_FEEDBACK_TOKEN when set)",
                "security": [{}, {"bearer": []}],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"type": "object", "required": ["labels"], "properties": {
                        "labels": {"type": "array", "items": {
                            "type": "object", "required": ["id", "label"], "properties": {
                                "id": {"type": "string"}, "label": {"type": "number"}}}}}}}}},
                "responses": {"200": _json({"type": "object", "properties": {
                    "accepted": {"type": "integer"},
                    "unknown_ids": {"type": "array", "items": {"type": "string"}}}}),
                    **_errors(400, 401, 413, 415)}}},
            "/ping": {"get": {"summary": "Liveness (MLflow)", "responses": {
                "200": {"description": "Alive"}}}},
            "/health": {"get": {"summary": "Liveness (MLflow)", "responses": {
                "200": {"description": "Alive"}}}},
            "/ready": {"get": {"summary": "True once the champion answered a real prediction",
                               "responses": {"200": _json({"type": "object"}),
                                             "503": _json({"type": "object"}, "Not ready")}}},
            "/version": {"get": {"summary": "tether and MLflow versions, served versions",
                                 "responses": {"200": _json({"type": "object"})}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {
                "200": {"description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/admin/reload": {"post": _reload("Re-read the registry now (bearer "
                                              "TETHER_ADMIN_TOKEN)")},
            "/reload-model": {"post": _reload("Same as /admin/reload")},
            "/trigger": {"post": {
                "summary": "Hand a manual retrain to the controller (bearer TETHER_ADMIN_TOKEN)",
                "security": [{"bearer": []}],
                "requestBody": {"required": False, "content": {"application/json": {
                    "schema": {"type": "object", "properties": {
                        "reason": {"type": "string"}}}}}},
                "responses": {"202": _json({"type": "object", "properties": {
                    "accepted": {"type": "boolean"}, "reason": {"type": "string"}}},
                    "Handed to the controller"), **_errors(400, 401, 403, 413, 503)}}},
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


def docs_page(document: dict[str, Any]) -> str:
    rows = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            codes = ", ".join(operation.get("responses", {}))
            rows.append(f"<tr><td><code>{method.upper()}</code></td><td><code>"
                        f"{html.escape(path)}</code></td><td>{html.escape(operation['summary'])}"
                        f"</td><td>{codes}</td></tr>")
    title = html.escape(document["info"]["title"])
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
            "<style>body{font-family:sans-serif;margin:2em}td{padding:4px 12px}</style>"
            f"</head><body><h1>{title}</h1><p>{html.escape(document['info']['description'])}"
            "</p><p>Machine-readable: <a href='/openapi.json'>/openapi.json</a></p>"
            "<table><tr><th>Method</th><th>Path</th><th>What</th><th>Status codes</th></tr>"
            + "".join(rows) + "</table></body></html>")

import os

from salt_ext.config import DEFAULTS, load_settings, redact_dsn, redacted
from salt_ext.engine.inventory_service import Backoff
from salt_ext.errors import ERROR_CODES, ErrorInfo, ServerFlowError
from salt_ext.loader import LOADER_DIRS, clean_kwargs, get_loader_dirs, report

import pytest


def test_settings_merge_over_defaults_and_admin_url_defaults_to_url():
    settings = load_settings({"serverflow": {"database": {"url": "postgresql://u:p@h/db"},
                                             "inventory": {"ping_interval": 7}}})
    assert settings["database"]["url"] == "postgresql://u:p@h/db"
    assert settings["database"]["admin_url"] == "postgresql://u:p@h/db"
    assert settings["inventory"]["ping_interval"] == 7
    assert settings["inventory"]["ping_timeout"] == DEFAULTS["inventory"]["ping_timeout"]
    assert load_settings(None)["tenant_id"] == DEFAULTS["tenant_id"]


def test_secrets_are_redacted():
    assert redact_dsn("postgresql://app:s3cret@127.0.0.1:5432/x") == "postgresql://app:***@127.0.0.1:5432/x"
    shown = redacted({"database": {"url": "postgresql://a:pw@h/d"}, "llm": {"api_key": "sk-123"},
                      "inventory": {"tags_key": "serverflow:tags"}})
    assert shown["database"]["url"] == "postgresql://a:***@h/d"
    assert shown["llm"]["api_key"] == "***"
    assert shown["inventory"]["tags_key"] == "serverflow:tags"


def test_loader_dirs_point_at_our_modules():
    dirs = get_loader_dirs()
    for kind in ("modules", "engines", "runners", "states"):
        (path,) = dirs[kind]
        assert os.path.basename(path) == LOADER_DIRS[kind]
        assert os.path.isfile(os.path.join(path, "serverflow.py"))


def test_report_turns_errors_into_values_and_retcode():
    context = {}

    def fails():
        raise ServerFlowError("SRV001", "no server 'x'")

    out = report(context, fails)
    assert out == {"error": {"code": "SRV001", "message": "no server 'x'"}, "retcode": 1}
    assert context["retcode"] == 1
    assert report({}, lambda: 5) == 5
    assert clean_kwargs({"a": 1, "__pub_fun": "x"}) == {"a": 1}


def test_error_codes_are_the_specification_ones():
    for code in ("AUTH001", "SRV001", "SRV003", "EXEC003", "EXEC004", "AI004", "RATE001"):
        assert code in ERROR_CODES
    with pytest.raises(ValueError):
        ErrorInfo("NOPE42", "x")
    assert str(ErrorInfo("SRV002", "web-1 is offline")) == "SRV002 Server offline: web-1 is offline"


def test_backoff_doubles_to_a_cap_and_resets():
    backoff = Backoff(1, 8)
    assert [backoff.failed(0) for _ in range(5)] == [1, 2, 4, 8, 8]
    assert not backoff.due(7) and backoff.due(8)
    backoff.succeeded()
    assert backoff.due(0) and backoff.failed(0) == 1

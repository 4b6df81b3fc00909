"""The channels file: valid files load; a bad one fails naming file, line and field, never a key."""

import pytest

from app import create_app
from core.channels import ChannelFileError, load

GOOD = """
[[channels]]
name = "anthropic-main"
protocol = "anthropic"
base_url = "https://api.anthropic.com/"
api_keys = ["sk-ant-secret-one", "sk-ant-secret-two"]
models = ["claude-sonnet-4-6"]
priority = 0
weight = 2
timeout_s = 120

[channels.model_map]
"claude-sonnet-4-6" = "claude-sonnet-4-6-20260101"

[channels.prices."claude-sonnet-4-6"]
input = "3.00"
cache_write = "3.75"
cache_read = "0.30"
output = "15.00"
"""


def write(tmp_path, text):
    path = tmp_path / "channels.toml"
    path.write_text(text)
    return path


def test_channels_load_parses_every_field(tmp_path):
    (ch,) = load(write(tmp_path, GOOD))
    assert ch.name == "anthropic-main" and ch.base_url == "https://api.anthropic.com"
    assert ch.api_keys == ("sk-ant-secret-one", "sk-ant-secret-two")
    assert ch.weight == 2 and ch.timeout_s == 120.0
    assert ch.upstream_model("claude-sonnet-4-6") == "claude-sonnet-4-6-20260101"
    assert str(ch.prices["claude-sonnet-4-6"]["cache_write"]) == "3.75"
    assert "secret" not in repr(ch)


@pytest.mark.parametrize(
    ("edit", "line", "field"),
    [
        (('protocol = "anthropic"', 'protocol = "grpc"'), 4, "channels[0].protocol"),
        (('weight = 2', 'weight = -1'), 9, "channels[0].weight"),
        (('api_keys = ["sk-ant-secret-one", "sk-ant-secret-two"]', "api_keys = []"), 6, "channels[0].api_keys"),
        (('output = "15.00"', "output = 15.0"), 19, "channels[0].prices.claude-sonnet-4-6.output"),
        (('timeout_s = 120', 'timeout_s = "soon"'), 10, "channels[0].timeout_s"),
    ],
)
def test_channels_bad_field_names_file_line_and_field(tmp_path, edit, line, field):
    path = write(tmp_path, GOOD.replace(*edit))
    with pytest.raises(ChannelFileError) as info:
        load(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: {field}:"), message
    assert "secret" not in message


def test_channels_syntax_error_names_the_line(tmp_path):
    path = write(tmp_path, GOOD.replace('weight = 2', 'weight = = 2'))
    with pytest.raises(ChannelFileError, match=rf"^{path}: .*line 9"):
        load(path)


def test_channels_missing_field_and_duplicate_name(tmp_path):
    with pytest.raises(ChannelFileError, match=r"channels\[0\]\.models: required field is missing"):
        load(write(tmp_path, GOOD.replace('models = ["claude-sonnet-4-6"]\n', "")))
    twice = GOOD + GOOD.split("[channels.model_map]")[0]
    with pytest.raises(ChannelFileError, match=r"channels\[1\]\.name: duplicate channel name"):
        load(write(tmp_path, twice))


def test_channels_bad_file_stops_app_start(tmp_path):
    path = write(tmp_path, GOOD.replace('protocol = "anthropic"', 'protocol = "grpc"'))
    with pytest.raises(ChannelFileError, match="channels.toml:4: channels\\[0\\].protocol"):
        create_app({"BYTESPIKE_CHANNELS_FILE": str(path), "BYTESPIKE_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})

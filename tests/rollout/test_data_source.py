"""Prompt data that is wrong in the ways real files are: every problem names the file and line; a
label key no row has is an error, one some rows lack a counted warning."""

from __future__ import annotations

import pytest

from slime.rollout.data_source import load_prompts


@pytest.fixture(scope="module")
def tokenizer(tiny_base):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_base / "tiny-cpu"))


def load(path, tokenizer, label_key="label"):
    return load_prompts(str(path), tokenizer, input_key="prompt", label_key=label_key, metadata_key=None,
                        apply_chat_template=True)


@pytest.mark.parametrize("line, kind", [("5", "a number: 5"), ('"text"', "a string: \"text\""), ("null", "null: null"),
                                        ("[1, 2]", "a list: [1, 2]")])
def test_issue13_6_a_line_that_is_no_json_object_names_file_and_line(tmp_path, tokenizer, line, kind):
    data = tmp_path / "train.jsonl"
    data.write_text('{"prompt": "1+1=", "label": "2"}\n\n' + line + "\n")
    with pytest.raises(ValueError) as caught:
        load(data, tokenizer)
    assert str(caught.value) == f"{data}:3: each line must be a JSON object ({{\"prompt\": …}}), this one is {kind}"


def test_issue13_6_a_file_that_is_not_utf8_names_file_line_and_byte(tmp_path, tokenizer):
    data = tmp_path / "latin1.jsonl"
    data.write_bytes('{"prompt": "1+1=", "label": "2"}\n{"prompt": "caf\u00e9"}\n'.encode("latin-1"))
    with pytest.raises(ValueError, match=rf"^{data}:2: not UTF-8 \(byte 0xe9 at column 16\); save the file as UTF-8$"):
        load(data, tokenizer)


def test_issue13_6_a_label_key_that_no_row_has_is_an_error(tmp_path, tokenizer):
    data = tmp_path / "train.jsonl"
    data.write_text('{"prompt": "1+1=", "answer": "2"}\n{"prompt": "2+1=", "answer": "3"}\n')
    with pytest.raises(ValueError) as caught:
        load(data, tokenizer)
    assert str(caught.value) == (f"{data}: no row has the label key 'label' (--label-key); the first row's keys are "
                                 "['answer', 'prompt']")


def test_issue13_6_a_label_some_rows_lack_is_a_counted_warning(tmp_path, tokenizer, capsys):
    data = tmp_path / "train.jsonl"
    data.write_text("\ufeff" + '{"prompt": "1+1=", "label": "2"}\n{"prompt": "2+1="}\n{"prompt": "3+1="}\n')
    prompts = load(data, tokenizer)
    assert [p.label for p in prompts] == ["2", None, None]
    assert capsys.readouterr().err == (f"slime: warning: {data}: 2 of 3 rows have no 'label' key (--label-key) and "
                                       "get no label: line 2, 3\n")


def test_tool_definitions_reach_the_chat_template(tmp_path):
    import json

    from slime.rollout.data_source import load_prompts
    from slime.cli.make_tiny_model import build_tokenizer

    tokenizer = build_tokenizer()
    tokenizer.chat_template = "{% if tools %}{{ tools | length }}+{% endif %}{% for m in messages %}{{ m.content }}{% endfor %}"
    data = tmp_path / "prompts.jsonl"
    data.write_text(json.dumps({"prompt": "1=", "functions": [{"name": "a"}, {"name": "b"}]}) + "\n"
                    + json.dumps({"prompt": "2="}) + "\n")
    prompts = load_prompts(str(data), tokenizer, input_key="prompt", label_key=None, metadata_key=None,
                           apply_chat_template=True, tool_key="functions")
    assert [p.text for p in prompts] == ["2+1=", "2="]

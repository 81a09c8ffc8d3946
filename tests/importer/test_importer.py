"""tools/import_launcher.py on launchers written the way teams write them: each import passes its
parity check and reproduces the committed fixture under tests/fixtures/imported/ (laid out like the
repository: conf/, scripts/, tests/golden/), which composes on top of conf/ to its golden file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from slime.config.argsfile import without_machine_lines
from slime.importer.capture import capture
from slime.importer.importer import ImportFailed, ImportTarget, import_launcher, parity
from tests.helpers.paths import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "launchers"
IMPORTED = sorted(FIXTURES.glob("run-imported-*.sh"))
INTO = ImportTarget(ROOT / "tests" / "fixtures" / "imported")
CONF = INTO.conf


def test_there_are_at_least_eight_launchers():
    assert len(list(FIXTURES.glob("*.sh"))) >= 8


@pytest.mark.parametrize("script", IMPORTED, ids=lambda p: p.stem)
def test_import_passes_parity_and_reproduces_the_committed_config(script):
    result = import_launcher(script, target=INTO)
    for path, text in result.files.items():
        assert path.read_text() == text, f"{path} differs from a fresh import: run make goldens"


@pytest.mark.slow
def test_the_fixtures_generate_their_goldens_with_config_dir():
    for config in sorted(CONF.glob("run_imported_*.yaml")):
        result = subprocess.run([sys.executable, "tools/generate_args.py", "-cd", str(CONF.relative_to(ROOT)),
                                 "--config-name", config.stem], capture_output=True, text=True, cwd=ROOT, check=False)
        assert result.returncode == 0, result.stderr
        assert without_machine_lines(result.stdout) == INTO.golden(config.stem).read_text(), config.stem


def test_imports_stay_out_of_the_projects_own_runs():
    from slime.config.compose import primary_configs

    assert not [name for name in primary_configs() if "imported" in name]
    assert not list((ROOT / "conf" / "model").glob("imported*")) and not list((ROOT / "scripts").rglob("*imported*"))
    assert not list((ROOT / "tests" / "golden").glob("*imported*"))


def test_shell_variables_survive_as_references_and_can_be_given():
    text = (CONF / "run_imported_dense.yaml").read_text()
    assert r"hf_checkpoint: \${BASE_DIR}/Qwen3-4B" in text
    given = import_launcher(FIXTURES / "run-imported-dense.sh", values={"BASE_DIR": "/mnt/models"}, target=INTO)
    config = next(t for p, t in given.files.items() if p.name == "run_imported_dense.yaml")
    assert "hf_checkpoint: /mnt/models/Qwen3-4B" in config and given.variables == []


def test_arithmetic_and_seq_are_written_as_values():
    text = (CONF / "run_imported_moe.yaml").read_text()
    assert "actor_num_gpus_per_node: 4" in text and "rollout_num_gpus: 4" in text
    assert "rollout_batch_size: 32" in text
    assert "sglang_cuda_graph_bs: [1, 2, 4, 8, 16, 24, 32, 40" in text and "248, 256]" in text


def test_commented_out_lines_are_dropped():
    text = (CONF / "run_imported_dense.yaml").read_text()
    assert "micro_batch_size" not in text and "wandb" not in text and "FP8" not in text


def test_an_existing_model_file_is_reused_and_a_new_one_written(tmp_path):
    assert "- model: qwen3-4B" in (CONF / "run_imported_dense.yaml").read_text()
    assert "- model: moonlight" in (CONF / "run_imported_mla.yaml").read_text()
    assert "- model: glm4-9B" in (CONF / "run_imported_direct.yaml").read_text()
    fresh = ImportTarget(tmp_path)
    first = import_launcher(FIXTURES / "run-imported-newmodel.sh", target=fresh)
    assert (first.model, first.new_model) == ("imported_newmodel_model", True)
    from slime.importer.importer import write

    write(first)
    for committed in (INTO.model_file("imported_newmodel_model"), INTO.model_script("imported_newmodel_model")):
        written = tmp_path / committed.relative_to(INTO.root)
        assert written.read_text() == committed.read_text(), written
    assert "imported from the MODEL_ARGS of run-imported-newmodel.sh" in fresh.model_file(first.model).read_text()
    assert "- model: imported_newmodel_model" in fresh.config_file("run_imported_newmodel").read_text()
    again = import_launcher(FIXTURES / "run-imported-newmodel.sh", target=fresh)
    assert (again.model, again.new_model) == ("imported_newmodel_model", False)  # now it exists: reused


def test_a_missing_model_file_is_a_clear_error():
    with pytest.raises(ImportFailed, match=r"models/qwen9-9B\.sh, which does not exist"):
        import_launcher(FIXTURES / "broken-missing-model.sh")


def test_unknown_flags_are_reported_with_the_closest_not_dropped():
    with pytest.raises(ImportFailed) as caught:
        import_launcher(FIXTURES / "broken-unknown-flag.sh")
    assert "unknown flag --rollout-batchsize (closest known flag: --rollout-batch-size)" in str(caught.value)
    assert "unknown flag --frobnicate-level" in str(caught.value)


def test_parity_reports_differences_flag_by_flag():
    differences, respelled = parity(["--lr", "1e-6", "--kl-loss-coef", "0.00"], ["--lr", "2e-6", "--kl-loss-coef", "0"])
    assert differences == ["--lr: the launcher gives 1e-06, the config 2e-06"]
    assert respelled == ["--kl-loss-coef"]


def test_nothing_the_script_calls_is_run(tmp_path):
    canary = tmp_path / "canary"
    script = tmp_path / "run-hostile.sh"
    script.write_text(f"""#!/bin/bash
set -e
pkill -9 python
ray stop --force
ray start --head --num-gpus 8
sleep 600
nvidia-smi -L
python3 -c 'open("{canary}", "w")'
/usr/bin/python3 -c 'open("{canary}", "w")'
ssh worker1 "rm -rf /"
python3 train.py --lr 1e-6 --num-layers 2
""")
    captured = capture(script, timeout=30)
    assert captured.argv == ["--lr", "1e-6", "--num-layers", "2"]
    assert not canary.exists()


# Each escape a hostile launcher tried before the sandbox; {victim} is a folder beside the script.
ESCAPES = {
    "rm": 'rm -rf "{victim}"',
    "curl": 'curl -s -m 5 "http://127.0.0.1:{port}/"; exec 3<>"/dev/tcp/127.0.0.1/{port}"',
    "redirection": 'echo pwned > "{victim}/canary"; echo pwned >> "{victim}/precious"',
    "perl": """perl -e 'open(my $f, ">", "{victim}/canary") or die; print $f "pwned"'""",
    "sh": """/bin/sh -c 'echo pwned > "{victim}/canary"; touch "{victim}/canary2"'""",
    "setsid": 'setsid bash -c "exec -a {marker} tail -f /dev/null" & disown; nohup tail -f /dev/null &',
    "kill": 'builtin kill -TERM {outsider}; perl -e "kill 15, {outsider}"; /bin/kill -9 {outsider}',
    "remount": 'mount -o remount,rw,bind "{victim}"; mount -o remount,rw /; touch "{victim}/canary"',
    "nested": """unshare -Urm sh -c 'mount -o remount,rw,bind "{victim}"; umount -l "{victim}"; touch "{victim}/canary"'""",
    # a server on a socket file under the visible /tmp (tmux's, ssh-agent's, Ray's raylet are such)
    "unix-socket": 'curl -s -m 5 --unix-socket "{socket}" http://x/; '
                   """perl -MIO::Socket::UNIX -e 'IO::Socket::UNIX->new(Peer => "{socket}") or die "$!"'""",
}


@pytest.mark.parametrize("escape", ESCAPES)
def test_issue13_2_a_hostile_launcher_cannot_escape_the_sandbox(escape, tmp_path):
    import socket
    import uuid

    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_text("keep me")
    marker = f"slime_escapee_{uuid.uuid4().hex}"
    outsider = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with socket.socket() as server, socket.socket(socket.AF_UNIX) as local:
        server.bind(("127.0.0.1", 0))
        local.bind(str(tmp_path / "server.sock"))
        for listening in (server, local):
            listening.listen(8)
            listening.setblocking(False)
        line = ESCAPES[escape].format(victim=victim, port=server.getsockname()[1], marker=marker, outsider=outsider.pid,
                                      socket=tmp_path / "server.sock")
        script = tmp_path / "run-hostile.sh"
        script.write_text(f"#!/bin/bash\n{line}\npython3 train.py --lr 1e-6\n")
        try:
            captured = capture(script, timeout=30)
            for listening in (server, local):
                with pytest.raises(BlockingIOError):
                    listening.accept()  # no connection ever reached the loopback or the socket-file server
            assert outsider.poll() is None, "the script signalled a process outside"
        finally:
            outsider.kill()
            outsider.wait()
    assert captured.argv == ["--lr", "1e-6"]
    assert sorted(p.name for p in victim.iterdir()) == ["precious"] and (victim / "precious").read_text() == "keep me"
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True, check=False).stdout
    assert left == "", "a process of the script outlived the import"


def test_the_real_file_system_is_seen_read_only_tmp_included(tmp_path):
    """A launcher under /tmp that sources a model file and reads a value from another folder under /tmp sees
    them as they are; it cannot write there; its scratch folder ($TMPDIR) takes what it writes."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "model.sh").write_text("MODEL_ARGS=(--num-layers 2 --hidden-size 64)\n")
    (elsewhere / "lr").write_text("3e-6\n")
    script = tmp_path / "launch" / "run-x.sh"
    script.parent.mkdir()
    script.write_text(f"""#!/bin/bash
set -euo pipefail
source {elsewhere}/model.sh
LR=$(cat {elsewhere}/lr)
if touch {elsewhere}/canary 2>/dev/null || touch /tmp/slime-canary-$$ 2>/dev/null; then TMP=writable; else TMP=read-only; fi
echo scratch > "$TMPDIR/note"
python3 train.py "${{MODEL_ARGS[@]}}" --lr "$LR" --tmp "$TMP" --note "$(cat "$TMPDIR/note")"
""")
    captured = capture(script, timeout=30)
    assert captured.argv == ["--num-layers", "2", "--hidden-size", "64", "--lr", "3e-6", "--tmp", "read-only",
                             "--note", "scratch"]
    assert captured.sourced == [elsewhere / "model.sh"]
    assert not (elsewhere / "canary").exists()


def test_an_array_the_launcher_never_defines_is_empty_with_a_note(tmp_path):
    """``"${EVAL_ARGS[@]}"`` of an array the script never defines: bash expands it to nothing, and so does the import."""
    script = tmp_path / "run-no-eval.sh"
    script.write_text("""#!/bin/bash
set -euo pipefail
MODEL_ARGS=(--num-layers 2 --hidden-size 64 --num-attention-heads 8 --vocab-size 1000)
CKPT_ARGS=(--hf-checkpoint /models/tiny)
ROLLOUT_ARGS=(--prompt-data /data/train.jsonl --rollout-batch-size 8 --n-samples-per-prompt 4 --num-rollout 10)
python3 train.py "${MODEL_ARGS[@]}" "${CKPT_ARGS[@]}" "${ROLLOUT_ARGS[@]}" "${EVAL_ARGS[@]}" --lr 1e-6 --colocate
""")
    captured = capture(script)
    assert captured.argv[-3:] == ["--lr", "1e-6", "--colocate"] and "--num-rollout" in captured.argv
    assert not any("EVAL_ARGS" in token for token in captured.argv)
    result = import_launcher(script, "run_no_eval")
    assert [note for note in result.notes if "EVAL_ARGS" in note] == [
        'EVAL_ARGS: the script expands "${EVAL_ARGS[@]}" but never defines it, and bash expands an undefined array '
        "to nothing: it is taken as empty"]
    config = next(text for path, text in result.files.items() if str(path).endswith("conf/run_no_eval.yaml"))
    assert "\neval:" not in config and "EVAL_ARGS" not in config


def test_the_scratch_folder_holds_64_mib_and_writing_more_fails_cleanly(tmp_path):
    script = tmp_path / "run-filler.sh"
    script.write_text("""#!/bin/bash
if head -c 40M /dev/zero >"$TMPDIR/a"; then FIRST=written; else FIRST=failed; fi
if WHY=$(head -c 40M /dev/zero 2>&1 >"$TMPDIR/b"); then SECOND=written; else SECOND=failed; fi
rm -f "$TMPDIR/a" "$TMPDIR/b"
python3 train.py --first "$FIRST" --second "$SECOND" --why "$WHY"
""")
    captured = capture(script, timeout=60)
    assert captured.argv[:4] == ["--first", "written", "--second", "failed"]
    assert "No space left on device" in captured.argv[5]


def forced_path(tmp_path: Path, unshare: str | None) -> dict[str, str]:
    """A PATH with bash and, when given, an `unshare` of this text: the machine without a sandbox."""
    import os

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "bash").symlink_to("/bin/bash")
    if unshare is not None:
        (bin_dir / "unshare").write_text(unshare)
        (bin_dir / "unshare").chmod(0o755)
    return {**os.environ, "PATH": str(bin_dir)}


@pytest.mark.parametrize("unshare, reason", [
    (None, "unshare (util-linux) is not on PATH"),
    ("#!/bin/sh\necho 'unshare: write failed /proc/self/uid_map: Operation not permitted' >&2\nexit 1\n",
     "namespaces cannot be made here (unshare: write failed /proc/self/uid_map: Operation not permitted)"),
], ids=["no-unshare", "namespaces-refused"])
def test_issue13_2_without_a_sandbox_the_importer_refuses_and_runs_nothing(unshare, reason, tmp_path):
    canary = tmp_path / "canary"
    script = tmp_path / "run-x.sh"
    script.write_text(f"#!/bin/bash\ntouch {canary}\npython3 train.py --lr 1e-6\n")
    result = subprocess.run([sys.executable, "tools/import_launcher.py", str(script), "--check"], cwd=ROOT,
                            env=forced_path(tmp_path, unshare), capture_output=True, text=True, check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert "the script was not run: the importer runs launchers only in a sandbox" in result.stderr
    assert reason in result.stderr
    assert not canary.exists()


def test_cli_writes_nothing_when_the_import_fails(tmp_path):
    result = subprocess.run([sys.executable, "tools/import_launcher.py", str(FIXTURES / "broken-unknown-flag.sh")],
                            capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert not (ROOT / "conf" / "run_broken_unknown_flag.yaml").exists()
    assert not (ROOT / "conf" / "broken_unknown_flag.yaml").exists()


def test_cli_check_mode_reports_the_parity(tmp_path):
    result = subprocess.run([sys.executable, "tools/import_launcher.py", str(FIXTURES / "run-imported-dense.sh"),
                             "--check"], capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr
    assert "parity: the config's argv parses to the launcher's Namespace" in result.stdout
    assert "would write conf/run_imported_dense.yaml" in result.stdout
    assert not (ROOT / "conf" / "run_imported_dense.yaml").exists()


def test_cli_into_writes_the_repository_layout_under_the_folder(tmp_path):
    result = subprocess.run([sys.executable, "tools/import_launcher.py", str(FIXTURES / "run-imported-ppo.sh"),
                             "--into", str(tmp_path)], capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["conf/run_imported_ppo.yaml", "scripts/run-imported-ppo.sh", "tests/golden/run_imported_ppo.sh"]
    assert f"wrote {tmp_path}/conf/run_imported_ppo.yaml" in result.stdout
    assert f"-cd {tmp_path}/conf --config-name run_imported_ppo" in (tmp_path / "conf/run_imported_ppo.yaml").read_text()
    assert not (ROOT / "conf" / "run_imported_ppo.yaml").exists()


def test_an_existing_different_file_is_not_overwritten(tmp_path):
    script = tmp_path / "run-qwen3-4B.sh"
    script.write_text((FIXTURES / "run-imported-dense.sh").read_text().replace("${SCRIPT_DIR}/models", str(FIXTURES / "models")))
    from slime.importer.importer import write

    with pytest.raises(ImportFailed, match="would overwrite conf/run_qwen3_4B.yaml"):
        write(import_launcher(script, Path(script).stem.replace("-", "_")))


def test_upstream_style_variables_stay_references_bare_braced_or_with_their_default():
    text = (CONF / "run_imported_upstream_vars.yaml").read_text()
    # $BASE_DIR/… bare and ${BASE_DIR}/…: read, never set (the download branch that sets it does not run)
    assert r"hf_checkpoint: \${BASE_DIR}/Qwen3-4B" in text and r"ref_load: \${BASE_DIR}/Qwen3-4B_torch_dist" in text
    # SAVE_DIR=${SAVE_DIR:-/root/ckpt} then $SAVE_DIR/…, and ${DATA_DIR:-/root/data}/… inline
    assert r"load: \${SAVE_DIR:-/root/ckpt}/Qwen3-4B_slime/" in text
    assert r"prompt_data: \${DATA_DIR:-/root/data}/dapo-math-17k/dapo-math-17k.jsonl" in text
    assert "refers to (export them before sourcing): BASE_DIR, DATA_DIR (default /root/data), SAVE_DIR (default " \
           "/root/ckpt)" in text
    assert "actor_num_gpus_per_node: 8" in text  # an int flag holds the default of ${NUM_GPUS:-8}, with a note
    result = import_launcher(FIXTURES / "run-imported-upstream-vars.sh", target=INTO)
    assert any(note.startswith("--actor-num-gpus-per-node ${NUM_GPUS:-8}: a flag of type int") for note in result.notes)


def test_the_imported_defaults_apply_when_sourced_and_a_value_wins():
    from tests.helpers.bash import source_arrays

    golden = INTO.golden("run_imported_upstream_vars").read_text()
    assert "# shell variables expanded when sourced: BASE_DIR\n" in golden
    unset = source_arrays(golden, {"BASE_DIR": "/b"})
    given = source_arrays(golden, {"BASE_DIR": "/b", "DATA_DIR": "/mnt/data"})
    assert unset["ROLLOUT_ARGS"][1] == "/root/data/dapo-math-17k/dapo-math-17k.jsonl"
    assert given["ROLLOUT_ARGS"][1] == "/mnt/data/dapo-math-17k/dapo-math-17k.jsonl"
    assert unset["CKPT_ARGS"][1] == "/b/Qwen3-4B"


def test_a_script_that_stops_on_unset_variables_gets_placeholders_for_them():
    text = (CONF / "run_imported_upstream_multinode.yaml").read_text()
    assert r"hf_checkpoint: \${MODEL_DIR}/Qwen3-30B-A3B" in text and r"sglang_router_ip: \${MASTER_ADDR}" in text
    assert "refers to (export them before sourcing): MASTER_ADDR, MODEL_DIR" in text


def test_a_default_applies_only_where_the_script_used_it(tmp_path):
    script = tmp_path / "run-x.sh"
    script.write_text('#!/bin/bash\nset -u\nOUT=${OUT:-/out}\n'
                      'python3 train.py --load "$ROOT/a" --save ${ROOT:-/r}/b --ref-load "$OUT/c" --hf-checkpoint "$HF"\n')
    captured = capture(script, timeout=30)
    assert captured.argv == ["--load", "${ROOT}/a", "--save", "${ROOT:-/r}/b", "--ref-load", "${OUT:-/out}/c",
                             "--hf-checkpoint", "${HF}"]
    assert sorted(captured.variables) == ["HF", "OUT", "ROOT"]


def test_a_number_flag_on_a_variable_without_default_is_a_clear_error(tmp_path):
    script = tmp_path / "run-x.sh"
    script.write_text("#!/bin/bash\npython3 train.py --rollout-batch-size $BATCH --lr 1e-6\n")
    with pytest.raises(ImportFailed, match=r"--rollout-batch-size \$\{BATCH\}: a flag of type int cannot refer to a "
                                           r"shell variable in a config; give BATCH with --set NAME=VALUE"):
        import_launcher(script, target=ImportTarget(tmp_path))


def test_a_new_model_whose_config_does_not_validate_names_the_files_not_a_hydra_traceback():
    with pytest.raises(ImportFailed) as caught:
        import_launcher(FIXTURES / "broken-upstream-newmodel.sh")
    message = str(caught.value)
    assert "--global-batch-size 250 does not split over the actor's 8 data-parallel ranks" in message
    assert "[set by conf/run_broken_upstream_newmodel.yaml: rollout.global_batch_size=250" in message
    assert "Could not" not in message and "Traceback" not in message

"""The vendored OpenRouter reference files, and the tool that refreshes them (`python -m tests.data.refresh`)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from tests.data import OPENROUTER_DATA
from tests.data.refresh import MANIFEST_NAME, RefreshError, load_manifest, main, refresh, sha256_of

TODAY = dt.date(2031, 1, 2)


def test_every_vendored_file_matches_the_hash_its_manifest_records() -> None:
    files = load_manifest(OPENROUTER_DATA)["files"]
    assert "openapi.json" in files
    for name, entry in files.items():
        assert sha256_of(OPENROUTER_DATA / name) == entry["sha256"], f"{name} changed without a refresh"
        assert entry["origin"] and dt.date.fromisoformat(entry["copied"])


def test_every_vendored_sample_is_one_a_test_reads() -> None:
    tests_text = "".join(path.read_text(encoding="utf-8") for path in Path(__file__).parent.glob("test_*.py"))
    samples = [name for name in load_manifest(OPENROUTER_DATA)["files"] if name.startswith("samples/")]
    assert samples
    for name in samples:
        assert Path(name).name in tests_text, f"{name} is vendored but no test reads it"


@pytest.fixture
def vendored(tmp_path: Path) -> Path:
    """A copy of the vendored folder, for the refresh tool to write into."""
    copy = tmp_path / "vendored"
    shutil.copytree(OPENROUTER_DATA, copy)
    return copy


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A source folder holding the same files as the vendored one, read-only as the real one is."""
    folder = tmp_path / "source"
    for name in load_manifest(OPENROUTER_DATA)["files"]:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(OPENROUTER_DATA / name, folder / name)
        (folder / name).chmod(0o444)
    return folder


def test_refresh_copies_only_changed_files_and_records_their_hash_and_date(vendored: Path, source: Path) -> None:
    before = load_manifest(vendored)["files"]
    changed = "samples/sse_chat_errors_from_docs.txt"
    (source / changed).chmod(0o644)
    (source / changed).write_text("# a newer capture\n", encoding="utf-8")

    outcome = refresh(source, vendored, today=TODAY)

    assert outcome.updated == [changed]
    assert sorted(outcome.unchanged) == sorted(name for name in before if name != changed)
    assert (vendored / changed).read_text(encoding="utf-8") == "# a newer capture\n"
    after = load_manifest(vendored)["files"]
    assert after[changed]["sha256"] == sha256_of(source / changed)
    assert after[changed]["copied"] == TODAY.isoformat()
    assert after[changed]["origin"] == before[changed]["origin"]
    assert {name: after[name] for name in after if name != changed} == {
        name: before[name] for name in before if name != changed
    }


def test_refresh_of_an_identical_source_writes_nothing(vendored: Path, source: Path) -> None:
    manifest_before = (vendored / MANIFEST_NAME).read_bytes()
    outcome = refresh(source, vendored, today=TODAY)
    assert outcome.updated == []
    assert (vendored / MANIFEST_NAME).read_bytes() == manifest_before


def test_refresh_copies_in_a_file_newly_listed_in_the_manifest(vendored: Path, source: Path) -> None:
    manifest = load_manifest(vendored)
    manifest["files"]["samples/new.txt"] = {"origin": "a new capture"}
    (vendored / MANIFEST_NAME).write_text(json.dumps(manifest), encoding="utf-8")
    (source / "samples" / "new.txt").write_text("data: {}\n", encoding="utf-8")

    assert refresh(source, vendored, today=TODAY).updated == ["samples/new.txt"]
    entry = load_manifest(vendored)["files"]["samples/new.txt"]
    assert entry == {"origin": "a new capture", "sha256": sha256_of(source / "samples/new.txt"), "copied": "2031-01-02"}


def test_refresh_from_a_source_lacking_a_file_copies_nothing(vendored: Path, source: Path) -> None:
    (source / "openapi.json").unlink()
    (source / "samples" / "sse_chat_errors_from_docs.txt").chmod(0o644)
    (source / "samples" / "sse_chat_errors_from_docs.txt").write_text("changed\n", encoding="utf-8")
    manifest_before = (vendored / MANIFEST_NAME).read_bytes()

    with pytest.raises(RefreshError, match="lacks openapi.json; nothing was copied"):
        refresh(source, vendored, today=TODAY)
    assert (vendored / MANIFEST_NAME).read_bytes() == manifest_before
    assert (vendored / "samples" / "sse_chat_errors_from_docs.txt").read_text(encoding="utf-8") != "changed\n"


def test_refresh_command_reports_a_missing_source_folder_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--from", str(tmp_path / "nowhere")]) == 1
    assert "refresh failed" in capsys.readouterr().err


def test_refresh_command_names_each_file_it_left_unchanged(source: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The real vendored folder, from an identical source: nothing may change, so nothing is written.
    manifest_before = (OPENROUTER_DATA / MANIFEST_NAME).read_bytes()
    assert main(["--from", str(source)]) == 0
    assert (OPENROUTER_DATA / MANIFEST_NAME).read_bytes() == manifest_before
    out = capsys.readouterr().out
    assert out.count("unchanged ") == len(load_manifest(OPENROUTER_DATA)["files"]) and "updated" not in out

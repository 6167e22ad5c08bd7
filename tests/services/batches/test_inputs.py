"""How batch arguments become inputs: names relative to their argument, a file found
twice done once, two files of one relative name told apart."""

from app.services.batches.inputs import find_inputs
from tests.images import image_bytes


def test_inputs_are_named_relative_to_their_argument_and_found_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("photos/a.png", "photos/sub/a.PNG", "photos/sub/notes.txt", "other/a.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(image_bytes())

    found = find_inputs(["photos", "photos/**/*.png", "./photos/sub/a.PNG", "other"])

    assert [(i.input, i.source) for i in found] == [
        ("a.png", "photos/a.png"), ("sub/a.PNG", "photos/sub/a.PNG"), ("other/a.png", "other/a.png")]
    assert [i.file_name for i in found] == ["a.png", "a.PNG", "a.png"]
    assert found[0].read() == image_bytes()

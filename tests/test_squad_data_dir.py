"""The SQuAD data folder is read from ``QA_DATA`` when asked, not frozen at import."""

from qa.evaluation import squad


def test_data_dir_follows_qa_data_set_after_import(monkeypatch, tmp_path):
    monkeypatch.setenv("QA_DATA", str(tmp_path))
    assert squad.data_dir() == tmp_path
    assert squad.SQUAD_DIR == tmp_path / "squad"
    monkeypatch.setenv("QA_DATA", str(tmp_path / "other"))
    assert squad.DATA_DIR == tmp_path / "other"

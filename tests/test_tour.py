import json

from trainlab.tour import run_tour


def test_tour_writes_an_index_linking_each_report(tmp_path):
    seen = []
    index = run_tour(tmp_path, only=["mnist-binary"], on_result=seen.append)
    assert index.name == "index.html" and index.is_file()
    results = json.loads((index.parent / "tour.json").read_text())
    assert [r["name"] for r in results] == ["mnist-binary"] == [r["name"] for r in seen]
    assert results[0]["status"] == "done"
    page = index.read_text()
    assert "mnist-binary/" in page and "report.html" in page
    link = page.split("href='")[1].split("'")[0]
    assert (index.parent / link).is_file()

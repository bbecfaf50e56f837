"""``smartsplat bench limits`` reports what a record asks for next to each default limit."""
from smartsplat_dist.cli import main
from smartsplat_dist.codec.limits import DecodeLimits
from tests.archive.archive_helpers import make_record


def test_limits_bench_on_a_record(tmp_path, capsys):
    import json

    rec = tmp_path / "r.ssplat"
    rec.write_bytes(make_record(3, height=16, width=24, n=40))
    out = tmp_path / "limits.json"
    assert main(["bench", "limits", "--record", str(rec), "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    fig = doc["figures"]
    assert (fig["max_pixels"], fig["max_gaussians"]) == (16 * 24, 40)
    assert [r["limit"] for r in doc["rows"]] == list(DecodeLimits().to_dict())
    assert all(r["headroom"] > 1 for r in doc["rows"])  # a real record passes every default
    assert "max_overlap" in capsys.readouterr().out

"""The per-frame summary cache: built once, read back without decoding, rebuilt when stale or
hostile, never required (a read-only recording falls back to the per-user cache)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pvrec import summaries
from pvrec.inspect.info import summarize
from pvrec.recording.reader import Recording, open_recording
from pvrec.summaries import SUMMARY_FILE, frame_summaries
from tests.helpers import make_recording


@pytest.fixture
def decodes(monkeypatch):
    """How many frame files Recording decodes (its _decode, the one way in)."""
    count = [0]
    real = Recording._decode

    def counting(self, pos, prev, *rest):
        count[0] += 1
        return real(self, pos, prev, *rest)

    monkeypatch.setattr(Recording, "_decode", counting)
    return count


@pytest.fixture(autouse=True)
def user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "pvrec"


def _plain(rec_path, monkeypatch):
    """summarize without any cache: the figures as info computed them before the cache."""
    monkeypatch.setattr(summaries, "cache_paths", lambda rec: [])
    out = summarize(open_recording(rec_path))
    monkeypatch.undo()
    return out


def test_warm_cache_decodes_no_frame_and_gives_the_same_summary(tmp_path, decodes, monkeypatch):
    rec = make_recording(tmp_path / "r", 8)
    cold = summarize(open_recording(rec))
    assert (rec / SUMMARY_FILE).is_file()
    decodes[0] = 0
    warm = summarize(open_recording(rec))
    assert decodes[0] == 0
    assert warm == cold
    assert json.dumps(warm) == json.dumps(_plain(rec, monkeypatch))


def test_a_hostile_cache_is_rebuilt_not_trusted(tmp_path, decodes):
    rec = make_recording(tmp_path / "r", 4)
    want = summarize(open_recording(rec))
    good = np.load(rec / SUMMARY_FILE, allow_pickle=False)
    fields = {k: good[k] for k in good.files}
    fields["pages"] = fields["pages"] * 1000  # lies about the sizes, same shapes
    fields["counts"] = fields["counts"][:-1]  # and no longer adds up
    np.savez(rec / SUMMARY_FILE, **fields)
    decodes[0] = 0
    assert summarize(open_recording(rec)) == want
    assert decodes[0] == 4
    (rec / SUMMARY_FILE).write_bytes(b"not a zip file")
    assert summarize(open_recording(rec)) == want


def test_pickled_cache_is_refused(tmp_path):
    rec = make_recording(tmp_path / "r", 3)
    want = summarize(open_recording(rec))
    np.savez(rec / SUMMARY_FILE, meta=np.array([{"key": 1}], dtype=object))
    assert summarize(open_recording(rec)) == want


def test_read_only_recording_caches_per_user(tmp_path, user_cache, monkeypatch, decodes):
    rec = make_recording(tmp_path / "r", 3)
    real_save = summaries.save
    monkeypatch.setattr(summaries, "save", lambda path, *a: path.parent != rec
                        and real_save(path, *a))  # beside the recording: read-only
    frame_summaries(open_recording(rec))
    assert not (rec / SUMMARY_FILE).exists()
    assert len(list(user_cache.glob("summaries-*.npz"))) == 1
    decodes[0] = 0
    frame_summaries(open_recording(rec))
    assert decodes[0] == 0


def test_unwritable_everywhere_still_summarizes(tmp_path, monkeypatch):
    rec = make_recording(tmp_path / "r", 3)
    monkeypatch.setattr(summaries, "save", lambda *a: False)
    assert len(frame_summaries(open_recording(rec))) == 3


def test_a_growing_recording_extends_its_cache(tmp_path, decodes):
    frames = list(make_recording.__globals__["synthetic_frames"](8, 0, 4096))
    rec = make_recording(tmp_path / "r", frames[:5], complete=False, key_every=3)
    frame_summaries(open_recording(rec))
    make_recording(tmp_path / "full", frames, key_every=3)
    full = tmp_path / "full"
    for src in [*sorted((full / "frames").iterdir()), full / "frames.jsonl"]:
        dst = rec / src.relative_to(full)
        if not dst.exists() or dst.name == "frames.jsonl":  # the recorder appends
            dst.write_bytes(src.read_bytes())
    decodes[0] = 0
    got = frame_summaries(open_recording(rec))
    assert len(got) == 8
    assert decodes[0] == 5  # frames 3..7: from the key frame before the first new one


def test_a_cache_with_other_metric_columns_is_rebuilt(tmp_path, decodes):
    rec = make_recording(tmp_path / "r", 3)
    want = summarize(open_recording(rec))
    good = np.load(rec / SUMMARY_FILE, allow_pickle=False)
    fields = {k: good[k] for k in good.files}
    meta = json.loads(str(fields["meta"]))
    meta["columns"][0][0] = "[red]fake zone[/]"
    fields["meta"] = np.array(json.dumps(meta))
    np.savez(rec / SUMMARY_FILE, **fields)
    decodes[0] = 0
    assert summarize(open_recording(rec)) == want
    assert decodes[0] == 3


def test_timeline_from_summaries_is_class_timelines_without_decoding(tmp_path, decodes):
    from pvrec.classes import ValueClassifier, default_scheme
    from pvrec.render.data import class_timeline
    from pvrec.render.prepass import _summary_timeline, _whole
    from pvrec.sources import RecordingSource

    rec = make_recording(tmp_path / "r", 7)
    scheme = default_scheme()
    src = RecordingSource(rec)
    zone = next(iter(frame_summaries(src.rec)[0][1].metrics))
    asked = [("free_pages", zone), ("mixed_blocks", zone)]
    want = class_timeline(src, ValueClassifier(scheme), _whole(src.header), 1, 6, 2,
                          len(scheme), "flags", asked)
    decodes[0] = 0
    got = _summary_timeline(RecordingSource(rec), ValueClassifier(scheme), 1, 6, 2,
                            len(scheme), asked)
    assert decodes[0] == 0
    assert [a.tolist() for a in got] == [a.tolist() for a in want]
    assert got[0].tolist() == [1.0, 3.0, 5.0]


def test_recording_over_a_recording_with_force_clears_its_cache(tmp_path):
    from pvrec.recording.writer import prepare_directory

    # GIVEN a recording with its cache and a file of the user's beside them
    rec = make_recording(tmp_path / "r", 3)
    summarize(open_recording(rec))
    (rec / "notes.txt").write_text("mine")
    # WHEN a new recording is made over it with --force
    prepare_directory(rec, force=True)
    # THEN the old cache is gone with the old frames, the user's file stays
    assert not (rec / SUMMARY_FILE).exists() and (rec / "notes.txt").read_text() == "mine"


def test_the_workloads_pages_are_summarized_and_cached(tmp_path, decodes):
    """GIVEN a recording whose workload maps 10, 30, then 20 pages, WHEN info summarizes it
    cold and warm, THEN the workload's bytes are start 40 KiB, end 80 KiB, max 120 KiB at
    frame 1, the same both times, and a cache that lies about them is rebuilt; without the
    channel it is None."""
    mapped = [10, 30, 20]
    rec = make_recording(tmp_path / "r", 3, workload=lambda flags, i: np.arange(mapped[i]))
    want = {"start": 40960, "end": 81920, "min": 40960, "max": 122880, "max_frame": 1}
    assert summarize(open_recording(rec))["workload"] == want
    decodes[0] = 0
    assert summarize(open_recording(rec))["workload"] == want and decodes[0] == 0
    good = np.load(rec / SUMMARY_FILE, allow_pickle=False)
    fields = {k: good[k] for k in good.files}
    fields["workload"] = np.array([-5, 1, 2], np.int64)  # not a page count
    np.savez(rec / SUMMARY_FILE, **fields)
    assert summarize(open_recording(rec))["workload"] == want and decodes[0] == 3
    assert summarize(open_recording(make_recording(tmp_path / "plain", 2)))["workload"] is None


def test_metrics_csv_from_a_warm_cache_decodes_no_frame_and_is_the_decoded_text(
        tmp_path, decodes, monkeypatch):
    from pvrec.inspect.fragmentation import metrics_csv, metrics_region

    rec = make_recording(tmp_path / "r", 6)
    real = summaries.cache_paths
    monkeypatch.setattr(summaries, "cache_paths", lambda rec: [])
    plain = metrics_csv(open_recording(rec))  # every frame decoded, as before the cache
    assert decodes[0] == 6 and not (rec / SUMMARY_FILE).exists()
    monkeypatch.setattr(summaries, "cache_paths", real)
    cold = metrics_csv(open_recording(rec))
    decodes[0] = 0
    warm = metrics_csv(open_recording(rec))
    assert decodes[0] == 0
    assert warm == cold == plain
    assert len(plain.splitlines()) == 7  # a header line and one per frame
    r = open_recording(rec)
    region = metrics_region(r, f"0-{r.header.pfn_count // 2 * r.header.page_size}")
    assert decodes[0] == 0
    metrics_csv(r, region=region)  # a region's pages: decoded, not from the cache
    assert decodes[0] > 0


def test_the_cgroup_tally_comes_from_a_warm_cache_without_decoding(tmp_path, decodes):
    """GIVEN a recording with the cgroup channel (pages of inodes 7 and 9 moving frame by
    frame), WHEN --color-by cgroup's tally is taken cold, then after `pvrec info` filled the
    cache, THEN both tallies are {inode: pages summed over the frames read}, the warm one
    decodes no frame, and a cache that lies about the cgroups' pages is rebuilt, not used."""
    from pvrec.render.data import cgroup_tally
    from pvrec.sources import RecordingSource

    def cgroup(flags, i):
        inode = np.zeros(flags.size, np.uint64)
        inode[: 100 + 10 * i] = 7
        inode[1000: 1050 + i] = 9
        return inode

    rec = make_recording(tmp_path / "r", 5, channels=("flags", "cgroup"), cgroup=cgroup)
    n = open_recording(rec).pfn_count
    cold, _ = cgroup_tally(RecordingSource(rec), 0, 4)
    key = [0, 4]  # make_recording: one key frame, so the tally reads the two ends
    want = {7: sum(100 + 10 * i for i in key), 9: sum(50 + i for i in key)}
    want[0] = 2 * n - want[7] - want[9]
    assert cold == want
    summarize(open_recording(rec))  # fills the cache
    decodes[0] = 0
    assert cgroup_tally(RecordingSource(rec), 0, 4)[0] == want and decodes[0] == 0
    good = np.load(rec / SUMMARY_FILE, allow_pickle=False)
    fields = {k: good[k] for k in good.files}
    fields["cg_counts"] = fields["cg_counts"] + 1  # more inodes than the arrays hold
    np.savez(rec / SUMMARY_FILE, **fields)
    assert cgroup_tally(RecordingSource(rec), 0, 4)[0] == want and decodes[0] > 0


def test_each_frame_knows_the_tiles_it_touched_and_a_lying_cache_is_rebuilt(tmp_path, decodes):
    """GIVEN 4 tiles of 64x512 pages and frames changing pages in tiles {1}, {}, {0, 3} and
    (a key frame) {2}, WHEN summarized cold and warm, THEN each frame's tiles touched since
    the frame before are exactly those (the first frame's: not known), and a cache whose
    tiles are out of order is rebuilt."""
    tile = 64 * 512
    frames = [np.zeros(4 * tile, np.uint64)]
    for changed in ([tile + 5], [], [7, 3 * tile + 9], [2 * tile]):
        f = frames[-1].copy()
        f[changed] ^= 0x20
        frames.append(f)
    rec = make_recording(tmp_path / "r", frames, key_every=4)
    want = [None, [1], [], [0, 3], [2]]
    for _ in ("cold", "warm"):
        got = [s.touched for _, s in frame_summaries(open_recording(rec))]
        assert [None if t is None else t.tolist() for t in got] == want
    assert open_recording(rec).frames[4].kind == "key"
    good = np.load(rec / SUMMARY_FILE, allow_pickle=False)
    fields = {k: good[k] for k in good.files}
    fields["t_tiles"] = fields["t_tiles"][::-1].copy()  # [3, 0] is not sorted
    np.savez(rec / SUMMARY_FILE, **fields)
    decodes[0] = 0
    assert [None if s.touched is None else s.touched.tolist()
            for _, s in frame_summaries(open_recording(rec))] == want and decodes[0] == 5


def test_a_frame_damaged_after_caching_takes_the_deltas_after_it_out_too(tmp_path):
    """GIVEN a cached 8-frame recording (key frames 0 and 5) whose workload maps the most
    pages in frame 6, WHEN delta frame 3 is then cut short, THEN info summarizes frames
    0-2 and 5-7 alone (4 decoded onto 3 before and cannot be now, as render says) and
    names frame 6, not the sixth frame left, as the workload's largest."""
    mapped = [1, 2, 3, 4, 5, 6, 9, 7]
    rec = make_recording(tmp_path / "r", 8, key_every=5,
                         workload=lambda flags, i: np.arange(mapped[i]))
    assert summarize(open_recording(rec))["workload"]["max_frame"] == 6
    damaged = rec / open_recording(rec).frames[3].file
    damaged.write_bytes(damaged.read_bytes()[:100])
    got = open_recording(rec)
    assert [info.index for info, _ in frame_summaries(got)] == [0, 1, 2, 5, 6, 7]
    out = summarize(open_recording(rec))
    assert out["workload"]["max_frame"] == 6 and len(out["times"]) == 6


def test_ragged_counts_that_would_wrap_their_sum_are_refused(tmp_path, decodes):
    """GIVEN a cache whose touched counts add up, as int64, to the one tile stored (they wrap),
    WHEN read, THEN it is rebuilt, not believed."""
    rec = make_recording(tmp_path / "r", 3)
    want = [None if s.touched is None else s.touched.tolist()
            for _, s in frame_summaries(open_recording(rec))]
    good = np.load(rec / SUMMARY_FILE, allow_pickle=False)
    fields = {k: good[k] for k in good.files}
    fields["t_counts"] = np.array([2**63 - 1, 2**63 - 1, 3], np.int64)
    fields["t_tiles"] = np.array([5], np.int64)
    np.savez(rec / SUMMARY_FILE, **fields)
    decodes[0] = 0
    got = [None if s.touched is None else s.touched.tolist()
           for _, s in frame_summaries(open_recording(rec))]
    assert got == want and decodes[0] == 3

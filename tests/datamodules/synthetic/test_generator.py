"""The synthetic generator drawn in blocks and written into the pickle in place: the same bytes as in RAM."""

import hashlib
import pickle

import numpy as np
import pytest

from msabench.datamodules.mmsa import pickle_stream
from msabench.datamodules.mmsa.pickle_stream import Hole, write_with_holes
from msabench.datamodules.synthetic import cached_synthetic, get_recipe, synthetic_encoder
from msabench.datamodules.synthetic import generator as synthetic_generator
from msabench.datamodules.synthetic.generator import generate, write_synthetic
from msabench.datamodules.synthetic.recipes import split_sizes
from msabench.errors import ConfigError


def digest(data):
    return hashlib.sha256(pickle.dumps(data, protocol=4)).hexdigest()


def no_fallback(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the set was generated in RAM, not written in place")

    monkeypatch.setattr(synthetic_generator, "write_pickle", refuse)


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("synthetic", {"n_scale": 0.01}),
        ("synthetic-iemocap", {"n_scale": 0.01}),
        ("synthetic-sims", {"n_scale": 0.005}),
    ],
)
def test_blocks_of_any_size_draw_the_same_set(name, options):
    options["encoder"] = synthetic_encoder(name, 3) if get_recipe(name).text_ids else None
    whole = generate(name, 3, block_samples=10**6, **options)
    assert digest(generate(name, 3, block_samples=1, **options)) == digest(whole)
    assert digest(generate(name, 3, block_samples=4, **options)) == digest(whole)


@pytest.mark.parametrize(
    ("name", "options"),
    [("synthetic-iemocap", {"n_scale": 0.01}), ("synthetic", {"sizes": [60, 60, 61]})],
)
def test_written_in_place_is_byte_for_byte_the_pickle_of_the_set_in_ram(tmp_path, monkeypatch, name, options):
    options["encoder"] = synthetic_encoder(name, 1) if get_recipe(name).text_ids else None
    expected = pickle.dumps(generate(name, 1, **options), protocol=4)
    no_fallback(monkeypatch)
    path = write_synthetic(name, tmp_path / "x.pkl", 1, block_samples=7, **options)
    assert path.read_bytes() == expected
    assert [p.name for p in tmp_path.iterdir()] == ["x.pkl"]  # no temporary file left behind


def test_holes_match_the_standard_pickler_and_refuse_to_sit_in_a_frame(tmp_path):
    rng = np.random.default_rng(0)
    big = rng.standard_normal((3, 40, 300)).astype(np.float32)  # 144 KB: written outside frames
    tree = {
        "a": {"x": big, "n": np.arange(3), "id": np.array(["u", "v", "w"], dtype=object)},
        "b": {"x": big[:2]},
    }
    holes = {"a": {**tree["a"], "x": Hole(big.shape, big.dtype)}, "b": {"x": Hole((2, 40, 300), np.float32)}}
    with open(tmp_path / "t.pkl", "w+b") as handle:
        written = write_with_holes(holes, handle)
        written[0].array[:] = big
        written[1].array[:] = big[:2]
        for hole in written:
            hole.array.flush()
    assert (tmp_path / "t.pkl").read_bytes() == pickle.dumps(tree, protocol=4)
    with (
        open(tmp_path / "small.pkl", "w+b") as handle,
        pytest.raises(ValueError, match="inside a pickle frame"),
    ):
        write_with_holes({"x": Hole((10, 10), np.float32)}, handle)
    assert pickle_stream.FRAME_SIZE_TARGET == pickle._Framer._FRAME_SIZE_TARGET


def test_sizes_option(tmp_path, monkeypatch):
    monkeypatch.setenv("MSABENCH_CACHE", str(tmp_path / "cache"))
    assert split_sizes("synthetic-mosei", sizes=[16326, 1871, 4659]) == [16326, 1871, 4659]
    assert split_sizes("synthetic", 0.5, [10, 20, 30]) == [5, 10, 15]
    for wrong in ([1, 2, 3], [5, 5], "abc", [5.5, 5, 5]):
        with pytest.raises(ConfigError, match="sizes must be 3 sample counts") as info:
            split_sizes("synthetic", sizes=wrong)
        assert "\n" not in str(info.value)
    data = generate("synthetic-iemocap", sizes=[3, 4, 5])
    assert [len(data[part]["audio"]) for part in ("train", "valid", "test")] == [3, 4, 5]
    assert (
        data["config"]["sizes"] == [3, 4, 5]
        and "sizes" not in generate("synthetic-iemocap", n_scale=0.01)["config"]
    )
    default = cached_synthetic("synthetic-iemocap", 0, 0.01)
    sized = cached_synthetic("synthetic-iemocap", 0, 1.0, sizes=[3, 4, 5])
    assert sized != default and "_3-4-5_" in sized.name

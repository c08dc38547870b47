"""The synthetic datasets' datamodule, their cache and export (the variants: ``synthetic_recipes``).

A synthetic variant is generated once into the cache directory as an MMSA pickle (in blocks, straight into the
file: :func:`~msabench.datamodules.synthetic.generator.write_synthetic`) with its text encoder beside it, and
read back through the MMSA loader, so the real loading path is always exercised; :func:`export_synthetic`
writes the same file anywhere. Sets of 1 GiB or more are then memory-mapped from the array cache, as MMSA
files are.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from msabench.datamodules.base import LoadedData, MSADataModule, cache_root
from msabench.datamodules.mmsa import load_mmsa
from msabench.datamodules.mmsa.pickle_stream import write_pickle
from msabench.datamodules.synthetic import text as synthetic_text
from msabench.datamodules.synthetic.generator import generate, write_synthetic
from msabench.datamodules.synthetic.recipes import (
    CLS_ID,
    GENERATOR_VERSION,
    RECIPES,
    SEP_ID,
    SYNTHETIC_DATASETS,
    ModalityRecipe,
    SyntheticRecipe,
    get_recipe,
    split_sizes,
    synthetic_encoder,
)
from msabench.errors import ConfigError, DatasetNotFoundError

LOG = logging.getLogger(__name__)  # progress messages (the command line prints them)

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from msabench.datamodules.base import DataOptions

__all__ = [
    "CLS_ID",
    "GENERATOR_VERSION",
    "RECIPES",
    "SEP_ID",
    "SYNTHETIC_DATASETS",
    "ModalityRecipe",
    "SyntheticDataModule",
    "SyntheticRecipe",
    "cached_synthetic",
    "encoder_dir",
    "export_synthetic",
    "generate",
    "get_recipe",
    "synthetic_encoder",
    "write_pickle",
    "write_synthetic",
]


def encoder_dir(pickle_path: str | Path) -> Path:
    """The directory of the text encoder that ships beside a synthetic pickle (``x.pkl`` -> ``x.encoder``)."""
    path = Path(pickle_path)
    return path.with_name(f"{path.stem}.encoder")


def export_synthetic(
    name: str, out: str | Path, seed: int = 0, *, n_scale: float = 1.0, sizes: Sequence[int] | None = None
) -> Path:
    """Generate a synthetic variant and write it as an MMSA pickle, with its text encoder beside it.

    The encoder (a Hugging Face BERT directory, see :func:`encoder_dir`) is written for the variants with
    token ids, so the text can be re-encoded (``--bert-path DIR``) exactly as it was made.

    Args:
        name: one of :data:`SYNTHETIC_DATASETS`.
        out: the file to write, or an existing directory (then ``<name>_seed<seed>.pkl`` inside it).
        seed: the data seed.
        n_scale: multiplies the sample counts.
        sizes: the train / valid / test sample counts (default: the variant's).

    Returns:
        The pickle written.
    """
    recipe_name = name.lower()
    recipe = get_recipe(recipe_name)
    out = Path(out).expanduser()
    if out.is_dir():
        out = out / f"{recipe_name}_seed{seed}.pkl"
    encoder = synthetic_encoder(recipe_name, seed) if recipe.text_ids else None
    if encoder is not None:
        synthetic_text.save_encoder(encoder, encoder_dir(out))
    return write_synthetic(recipe_name, out, seed, n_scale, sizes=sizes, encoder=encoder)


def cached_synthetic(
    name: str,
    seed: int = 0,
    n_scale: float = 1.0,
    cache_dir: str | Path | None = None,
    sizes: Sequence[int] | None = None,
) -> Path:
    """The pickle of a synthetic variant in the cache directory, generated on first use.

    Its text encoder is cached beside it (:func:`encoder_dir`); it is written before the pickle, so a
    concurrent run that finds the pickle finds the encoder too.
    """
    recipe_name = name.lower()
    recipe = get_recipe(recipe_name)
    split_sizes(recipe_name, n_scale, sizes)  # refused before it names a file
    size_tag = "" if sizes is None else "_" + "-".join(str(int(size)) for size in sizes)
    path = (
        cache_root(cache_dir)
        / "synthetic"
        / f"{recipe_name}_seed{seed}{size_tag}_n{n_scale:g}_v{GENERATOR_VERSION}.pkl"
    )
    directory = encoder_dir(path)
    needs_encoder = recipe.text_ids and not synthetic_text.is_encoder_dir(directory)
    if path.is_file() and not needs_encoder:
        return path
    LOG.info(
        "generating the %s data (seed %d) and its text encoder into %s (once per machine, seconds)",
        recipe_name,
        seed,
        path.parent,
    )
    encoder = synthetic_encoder(recipe_name, seed) if recipe.text_ids else None
    if needs_encoder:
        assert encoder is not None  # needs_encoder implies a recipe with token ids
        # The weights depend only on (version, seed, variant), so a lost encoder is rebuilt identical.
        synthetic_text.save_encoder(encoder, directory, replace=False)
    if not path.is_file():
        write_synthetic(recipe_name, path, seed, n_scale, sizes=sizes, encoder=encoder)
    return path


class SyntheticDataModule(MSADataModule):
    """A synthetic variant, generated into the cache and read back through the MMSA loader.

    Args:
        name: one of :data:`SYNTHETIC_DATASETS`.
        data_seed: the data seed (fixed across training seeds, so seeds vary the training only).
        n_scale: multiplies the sample counts (tests use tiny sets).
        sizes: the train / valid / test sample counts (default: the variant's; ``synthetic-mosei`` with
            ``[16326, 1871, 4659]`` has MOSEI's).
        variant: ``unaligned``, the only layout generated (each modality at its own rate, as MMSA's
            ``unaligned_50.pkl``); ``aligned`` is refused, since the generator makes no word-aligned copy.
        mmap: memory-map the splits from a ``.npy`` cache (default: pickles of 1 GiB or more, as MMSA files).
        **options: see :class:`~msabench.datamodules.base.MSADataModule`; ``data_path`` reads that pickle
            (e.g. from :func:`export_synthetic`) instead of generating one, ``data_root`` is unused.
    """

    def __init__(
        self,
        name: str,
        *,
        data_seed: int = 0,
        n_scale: float = 1.0,
        sizes: Sequence[int] | None = None,
        variant: str = "unaligned",
        mmap: bool | None = None,
        **options: Unpack[DataOptions],
    ) -> None:
        super().__init__(name, **options)
        self.recipe = get_recipe(name)
        split_sizes(name, n_scale, sizes)  # a wrong count is refused here, before any generation
        self.sizes = None if sizes is None else [int(size) for size in sizes]
        if variant != "unaligned":
            raise ConfigError(
                f"{name} has no '{variant}' variant: the synthetic data are generated unaligned only "
                "(data.options.variant=unaligned)"
            )
        self.data_seed = data_seed
        self.n_scale = n_scale
        self.mmap = mmap

    @property
    def generated(self) -> bool:
        """Whether the data are generated from the recipe into the cache (not read from ``data_path``)."""
        return self.data_path is None

    @property
    def recipe_identity(self) -> str:
        """The generated data's name in the run key: variant, generator version, data seed and sizes."""
        sizes = "default" if self.sizes is None else "-".join(str(size) for size in self.sizes)
        recipe = f"{self.name}:v{GENERATOR_VERSION}:seed{self.data_seed}:n{self.n_scale:g}:sizes-{sizes}"
        return f"generated:{recipe}"

    @property
    def data_identity(self) -> str | None:
        """The recipe for generated data, the file's SHA-256 for a pickle read from ``data_path``.

        Generated floats differ between kinds of machine in their last bits (the BLAS and vector kernels a
        CPU selects round differently; README, "The synthetic dataset"), so hashing their file would make the
        same run a different run on each kind of machine.
        """
        return self.recipe_identity if self.generated else super().data_identity

    @property
    def text_encoder_identity(self) -> str | None:
        """The recipe for the encoder generated with the data; the fingerprint of any other encoder."""
        if self.generated and self.reencoder_is_shipped:
            return f"{self.recipe_identity}:encoder"
        return super().text_encoder_identity

    def _load(self) -> LoadedData:
        if self.data_path is not None:
            path = Path(self.data_path).expanduser()
            if not path.is_file():
                raise DatasetNotFoundError(
                    f"{self.name} data file not found: tried {path}; write one with msabench.datamodules."
                    f"export_synthetic('{self.name}', PATH) or omit the path to generate it"
                )
        else:
            path = cached_synthetic(self.name, self.data_seed, self.n_scale, self.cache_dir, self.sizes)
        encoder = encoder_dir(path)
        if self.recipe.text_ids and not synthetic_text.is_encoder_dir(encoder):
            raise DatasetNotFoundError(
                f"{self.name} text encoder not found beside {path}: expected {encoder}/ (config.json, "
                f"{synthetic_text.WEIGHTS_FILE}); export_synthetic('{self.name}', PATH) writes both"
            )
        loaded = load_mmsa(
            path, metric_family=self.recipe.metric_family, mmap=self.mmap, cache_dir=self.cache_dir
        )
        # The text of the variants with token ids is the encoder's output on whole sentences (contextual);
        # IEMOCAP-like text, made without ids, is per-token.
        return dataclasses.replace(
            loaded,
            text_contextual=self.recipe.text_ids,
            text_encoder=str(encoder) if self.recipe.text_ids else None,
        )

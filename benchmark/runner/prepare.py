"""A request resolved against its method, config and data, with its run key: the run before it trains."""

from __future__ import annotations

import warnings
from pathlib import Path

from msabench.config.schema import plain_dict
from msabench.datamodules import build_datamodule
from msabench.errors import ConfigError, DataWarning
from msabench.protocols import Setting, build_policy
from msabench.protocols.policies import policy_class
from msabench.runner.checks import check_config, check_networks, check_selection
from msabench.runner.identity import code_fingerprint, run_identity, run_key, run_name
from msabench.runner.request import PreparedRun, RunRequest, compose, resolve_policy_name, validation_settings
from msabench.runner.stages import policy_params


def prepare(request: RunRequest) -> PreparedRun:
    """Resolve method, config, data and key; raises user errors before anything is written."""
    method_cls, dataset, cfg = compose(request)
    policy_name = resolve_policy_name(request.train_policy, method_cls, cfg)
    check_config(method_cls, cfg, Path(request.output))
    settings = [_with_mask_seed(s, cfg.evaluation.mask_seed) for s in request.settings]
    if not settings:
        raise ConfigError("no test setting requested: give --protocol with --rate or --condition")
    request.settings = settings
    validation = validation_settings(policy_name, settings, cfg)
    # Only a policy that trains per setting reads the setting; the others ignore it.
    policy = build_policy(policy_name, matched=settings[0], **policy_params(cfg))
    matched = settings[0] if policy_class(policy_name).per_setting else None
    options = plain_dict(cfg.data.options)
    datamodule = build_datamodule(
        dataset,
        data_path=cfg.data.path,
        data_root=cfg.data.root,
        train_policy=policy,
        validation=validation,
        test=settings,
        seed=cfg.seed,
        batch_size=cfg.data.batch_size,
        eval_batch_size=cfg.data.eval_batch_size,
        num_workers=cfg.data.num_workers,
        text_view=cfg.data.text_view,
        bert_path=cfg.data.bert_path,
        normalize=cfg.data.normalize,
        **options,
    )
    # Repairs made while loading are said now and recorded with the run (status.json `warnings`).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        datamodule.setup("fit")
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    data_warnings = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    check_selection(cfg, datamodule.dims.metric_family)
    check_networks(method_cls, cfg, datamodule.dims)
    identity = run_identity(
        method=method_cls.method_name,
        dataset=dataset,
        datamodule=datamodule,
        policy_name=policy_name,
        matched=matched,
        cfg=cfg,
    )
    key = run_key(identity)
    name = run_name(dataset, method_cls.method_name, policy_name, matched, cfg.seed, key)
    return PreparedRun(
        request,
        method_cls,
        cfg,
        datamodule,
        policy_name,
        key,
        Path(request.output) / name,
        code_fingerprint(method_cls),
        list(dict.fromkeys(data_warnings)),
    )


def _with_mask_seed(setting: Setting, mask_seed: int) -> Setting:
    return Setting(setting.protocol, setting.rate, setting.condition, mask_seed)

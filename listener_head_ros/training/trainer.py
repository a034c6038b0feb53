"""
Training a learned listener on dialog streams, on one CPU/GPU or many via torchrun.

The split comes from the cache's source (:class:`~listener_head_ros.data.source.SplitScheme`):
leave-one-group-out (IEMOCAP's sessions) trains a **freshly initialised** network per
held-out group, a fixed split trains once on ``train``.  Each network trains on crops of the
continuous dialog streams (:class:`~listener_head_ros.training.dataset.DialogCrops`: a
loss-masked burn-in warms the state, the loss sees the listening windows), with AdamW,
warm-up + cosine learning rate, gradient clipping, an EMA of the weights and bf16 autocast on
CUDA; the loss is the network's own per target stream, weighted.  The EMA weights are exported
as a node-loadable checkpoint and scored on the held-out dialogs
(:mod:`~listener_head_ros.training.evaluation`): every figure, batched over whole dialogs (the
cross-validation figure), through the node's streaming path (a listening model only), and
for the neutral pose, with the floor ratio where the corpus ships floors.  The cache's role
(:mod:`listener_head_ros.roles`) is the role of every checkpoint it trains: a cache prepared
in the speaker role trains speaking models, which the node runs only as ``speaking_model``.
Under ``torchrun`` each process trains on its share of every batch
(:class:`DistributedSampler` + :class:`DistributedDataParallel`); rank 0 logs, saves and
scores.

A run is safe to stop and resume: every ``checkpoint_every`` steps, and after the step in
progress on SIGINT or SIGTERM (:mod:`~listener_head_ros.training.interruption`), the training
state is saved with every RNG (:mod:`~listener_head_ros.training.resume`), so that re-running
the same command continues exactly as if it had never stopped, and log.csv goes on from the
saved step with its clock.  A run directory continues only under the settings it trained with
(:meth:`TrainConfig.training_changes`): any other is refused.  A loss that is not finite or
exceeds the first step's by :data:`DIVERGENCE_FACTOR` stops training with
:class:`TrainingDiverged` before the step is applied, and nothing more is saved.
"""

from __future__ import annotations

import contextlib
import csv
from dataclasses import dataclass, fields, replace
import itertools
import json
import math
import os
from pathlib import Path
import time
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm
import yaml

from listener_head_ros.data.feature_cache import FeatureCache
from listener_head_ros.data.source import Fold
from listener_head_ros.models.device import resolve_device
from listener_head_ros.models.frame_features import feature_statistics
from listener_head_ros.models.frame_inputs import FrameInputs, TEXT
from listener_head_ros.models.learned import (
    InferenceConfig, save_learned_checkpoint, TorchListenerModel)
from listener_head_ros.models.networks import count_parameters
from listener_head_ros.models.registry import build_network, network_type
from listener_head_ros.roles import LISTENING
from listener_head_ros.settings import load_listener_settings, ListenerSettings
from listener_head_ros.streams import (
    COEFFICIENTS, HEAD, ROTATION_COLUMNS, stream_slices, total_dim)
from listener_head_ros.training.config import ConfigError, TrainConfig
from listener_head_ros.training.dataset import DialogCrops, DialogData, load_dialogs
from listener_head_ros.training.evaluation import (
    floor_ratios, headlines, neutral_predictions, predict_dialogs, relative_gap,
    score_dialogs, Scores, streaming_predictions, summarize)
from listener_head_ros.training.interruption import (
    stop_requests, StopRequest, TrainingInterrupted)
from listener_head_ros.training.resume import (
    has_training_state, load_training_state, Progress, save_training_state)
from listener_head_ros.training.stream_metrics import fold_spread

CHECKPOINT_DIR = 'checkpoint'  # inside each fold directory: what the node loads
CONFIG_NAME = 'train_config.yaml'  # in the run's directory: the settings it trains with
MIN_TEXT_SCALE = 0.1  # text columns are divided by max(their RMS, this)
DIVERGENCE_FACTOR = 100.0
"""Training stops when the loss exceeds the first step's by this times max(1, |first|)."""
clock = time.monotonic
"""The clock of log.csv's ``seconds`` column (training/time_config.py reads CPU time)."""


@dataclass(frozen=True)
class Distributed:
    """This process's place in a (possibly single-process) distributed run."""

    rank: int = 0
    world_size: int = 1
    device: str = 'cpu'

    @property
    def is_main(self) -> bool:
        """Tell whether this process logs, saves and evaluates."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """Tell whether more than one process takes part."""
        return self.world_size > 1


@contextlib.contextmanager
def distributed(device: str = 'auto') -> Iterator[Distributed]:
    """
    Join the torchrun process group for the block if there is one (NCCL on CUDA, else gloo).

    A group this call joined is destroyed when the block ends normally, after a barrier so that
    no rank tears its connections down while another still works (gloo's worker threads
    otherwise can abort the process at exit). After an exception it is left to the process's
    end, as destroying it while another rank is in a collective can hang.
    """
    resolved, warning = resolve_device(device)
    if warning:
        print(f'warning: {warning}')
    world_size = int(os.environ.get('WORLD_SIZE', '1'))
    if world_size == 1:
        yield Distributed(0, 1, resolved)
        return
    local_rank = int(os.environ.get('LOCAL_RANK', '0'))
    if resolved.startswith('cuda'):
        torch.cuda.set_device(local_rank)
        resolved = f'cuda:{local_rank}'
    joined = not dist.is_initialized()
    if joined:
        dist.init_process_group('nccl' if resolved.startswith('cuda') else 'gloo')
    yield Distributed(dist.get_rank(), dist.get_world_size(), resolved)
    if joined:
        dist.barrier()
        dist.destroy_process_group()


def learning_rate(config: TrainConfig, step: int) -> float:
    """Return the learning rate at ``step``: linear warm-up, then cosine decay to 10 %."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.learning_rate * (0.1 + 0.45 * (1.0 + math.cos(math.pi * min(progress, 1.0))))


def train_network(config: TrainConfig, data: DialogData, fold_dir: Path, seed: int,
                  run: Distributed, inputs: Optional[FrameInputs] = None) -> torch.nn.Module:
    """
    Train a fresh network on ``data``; return its EMA copy (resumes from ``fold_dir``).

    ``inputs`` are the frame inputs of ``data``'s rows: they say which columns are text (sparse
    0..1 values, divided by their RMS but at most by 1 / MIN_TEXT_SCALE, as a per-column std
    would blow a rare word's non-zeros up by a thousand)
    and whether the network learns a weighted sum of speech-encoder layers
    (:meth:`~listener_head_ros.models.frame_inputs.InputConfig.layer_mix`).

    Raises :class:`TrainingDiverged` (saving nothing) when the loss diverges, and
    :class:`~listener_head_ros.training.interruption.TrainingInterrupted` after saving the
    state when SIGINT or SIGTERM came during a step.
    """
    if config.batch_size % run.world_size:
        raise ValueError(f'batch_size {config.batch_size} must be divisible by the number of '
                         f'processes ({run.world_size})')
    torch.manual_seed(seed)
    sizes = {'output_dim': total_dim(config.targets), 'input_dim': data.features[0].shape[1]}
    layer_mix = inputs.config.layer_mix(inputs.features) if inputs is not None else ()
    if layer_mix:
        sizes['layer_mix'] = layer_mix
    network = build_network(config.model_type, {**config.model, **sizes})
    mean, std = feature_statistics(data.features)
    if inputs is not None:  # sparse 0..1 text columns: scaled by their RMS, never by less
        text = inputs.columns(TEXT)
        rows = np.concatenate([f[:, text] for f in data.features]).astype(np.float64)
        mean[text] = 0.0
        std[text] = np.maximum(np.sqrt((rows * rows).mean(0)), MIN_TEXT_SCALE)
    network.norm.set_statistics(mean, std)
    if hasattr(network, 'set_target_statistics'):  # a network that learns standardised targets
        network.set_target_statistics(*data.target_statistics())
    scale = target_scale(config, network, data)
    if scale is not None:
        scale = tuple(torch.from_numpy(a).to(run.device) for a in scale)
    network.to(run.device)
    ema = AveragedModel(network, avg_fn=_ema_with_warmup(config.ema_decay), use_buffers=True)
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    columns = list(stream_slices(config.targets).values())  # each stream's output columns
    trainer = _TrainingLoss(network, columns)
    if run.enabled:
        trainer = DistributedDataParallel(trainer)
    weights = torch.tensor([config.weight(name) for name in config.targets], device=run.device)
    dataset = DialogCrops(data, config.crop_frames, config.burn_in_frames, seed)
    sampler = DistributedSampler(dataset, run.world_size, run.rank, shuffle=True, seed=seed,
                                 drop_last=True)
    # A generator of its own: iterating the loader must not draw from the RNG dropout uses.
    loader = DataLoader(dataset, batch_size=config.batch_size // run.world_size,
                        sampler=sampler, drop_last=True,
                        generator=torch.Generator().manual_seed(seed))
    if len(loader) == 0:
        raise ValueError(f'{len(dataset)} crops per epoch are too few for batch_size '
                         f'{config.batch_size}: lower batch_size or crop_frames')
    state_dir = fold_dir / 'last'
    done, saved = Progress(), None  # saved: the step of the state in state_dir
    if has_training_state(state_dir):  # last: it restores the RNGs too
        done = load_training_state(state_dir, network, ema, optimizer, run.device)
        saved = done.step
        if run.is_main:
            print(f'resumed {fold_dir.name} at step {done.step}')
    autocast = run.device.startswith('cuda') and config.mixed_precision
    if run.is_main:
        fold_dir.mkdir(parents=True, exist_ok=True)
    log = _CsvLog(fold_dir / 'log.csv', done.step) if run.is_main else None
    bar = tqdm(total=config.steps, initial=done.step, desc=fold_dir.name,
               disable=not run.is_main, dynamic_ncols=True)
    step, epoch, skip, first_loss = done.step, done.epoch, done.batch, done.first_loss
    start = clock() - done.seconds
    with stop_requests() as stop:
        while step < config.steps:
            sampler.set_epoch(epoch)
            dataset.set_epoch(epoch)
            for batch, crops in enumerate(itertools.islice(loader, skip, None), skip + 1):
                if step >= config.steps:
                    break
                for group in optimizer.param_groups:
                    group['lr'] = learning_rate(config, step)
                x, y, mask, noise = (t.to(run.device, non_blocking=True) for t in crops)
                if scale is not None:
                    y = (y - scale[0]) / scale[1]
                with torch.autocast('cuda', dtype=torch.bfloat16, enabled=autocast):
                    losses = trainer(x, y, mask, noise)
                loss = (losses * weights * _frame_shares(mask, columns, run)).sum()
                value, signal_number = _agree(loss, stop, run)
                first_loss = value if first_loss is None else first_loss
                if _diverged(value, first_loss):
                    bar.close()
                    kept = (f' (the state of step {saved} stays in {state_dir})'
                            if saved is not None else '')
                    raise TrainingDiverged(
                        f'{fold_dir.name} diverged at step {step + 1}: loss {value:.4g}, '
                        f'{first_loss:.4g} at the first step; no checkpoint saved{kept}. '
                        'Lower learning_rate or grad_clip, or check the data')
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(network.parameters(), config.grad_clip)
                optimizer.step()
                ema.update_parameters(network)
                step += 1
                bar.update(1)
                seconds = round(clock() - start, 3)
                if log is not None and (step % config.log_every == 0 or step == config.steps):
                    log.write(step=step, loss=value, lr=learning_rate(config, step - 1),
                              seconds=seconds)
                    bar.set_postfix(loss=f'{value:.4f}')
                if signal_number or step % config.checkpoint_every == 0:
                    saved = step
                    if run.is_main:
                        save_training_state(state_dir, network, ema, optimizer,
                                            Progress(step, epoch, batch, seconds, first_loss),
                                            run.device)
                if signal_number:
                    bar.close()
                    raise TrainingInterrupted(signal_number, fold_dir.name, step,
                                              config.steps, state_dir)
            epoch, skip = epoch + 1, 0
    bar.close()
    if run.is_main:
        save_training_state(state_dir, network, ema, optimizer,
                            Progress(step, epoch, 0, round(clock() - start, 3), first_loss),
                            run.device)
    if stop.signal_number:  # it came after the last step
        raise TrainingInterrupted(stop.signal_number, fold_dir.name, step, config.steps,
                                  state_dir)
    return ema.module


class TrainingDiverged(RuntimeError):
    """The loss became non-finite or exploded: training stopped and saved nothing more."""


def _diverged(loss: float, first_loss: float) -> bool:
    """Tell whether ``loss`` is not finite or above the first step's by DIVERGENCE_FACTOR."""
    return not math.isfinite(loss) or (
        loss > first_loss + DIVERGENCE_FACTOR * max(1.0, abs(first_loss)))


def _agree(loss: torch.Tensor, stop: StopRequest, run: Distributed) -> Tuple[float, int]:
    """
    Return the step's loss over all processes, and a signal any of them got (0: none).

    Every process must decide alike whether to stop (diverged or signalled), before the
    backward pass, whose gradient all-reduce would otherwise wait for the ones that stopped.
    """
    if not run.enabled:
        return float(loss.detach()), stop.signal_number or 0
    total = loss.detach().float().reshape(1)
    dist.all_reduce(total)
    signal_number = torch.tensor([stop.signal_number or 0], device=total.device)
    dist.all_reduce(signal_number, op=dist.ReduceOp.MAX)
    return float(total) / run.world_size, int(signal_number)


def _ema_with_warmup(decay: float):
    """
    Return an EMA update whose decay ramps up as ``min(decay, (1 + n) / (10 + n))``.

    A fixed decay of 0.999 would still give the first, barely trained weights 22 % of the
    average after 1500 steps; the ramp lets short runs average recent weights only.
    """
    def update(average: torch.Tensor, current: torch.Tensor, count: torch.Tensor
               ) -> torch.Tensor:
        n = float(count)
        rate = min(decay, (1.0 + n) / (10.0 + n))
        return average * rate + current * (1.0 - rate)
    return update


class _TrainingLoss(torch.nn.Module):
    """
    The network's loss of each target stream as one forward pass, so DDP's hooks see it.

    Returns ``(S,)`` losses: the network's :meth:`loss` of its outputs with the mask kept
    only on each stream's columns, given the crops' training noise.
    """

    def __init__(self, network: torch.nn.Module, columns: Sequence[slice]) -> None:
        super().__init__()
        self.network = network
        self.columns = list(columns)

    def forward(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor,
                noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        outputs = self.network(x)
        losses = []
        for cols in self.columns:
            only = torch.zeros_like(mask)
            only[..., cols] = mask[..., cols]
            losses.append(self.network.loss(outputs, y, only, noise))
        return torch.stack(losses)


def _frame_shares(mask: torch.Tensor, columns: Sequence[slice], run: Distributed
                  ) -> torch.Tensor:
    """
    Return the factors that turn this process's frame-mean losses into shares of global ones.

    DDP averages gradients over processes; processes with more loss frames of a stream must
    weigh more, so that the result equals the frame mean over the whole batch, as in one
    process.
    """
    if not run.enabled:
        return torch.ones(len(columns), device=mask.device)
    local = torch.stack([mask[..., cols].any(-1).sum() for cols in columns]).to(torch.float64)
    total = local.clone()
    dist.all_reduce(total)
    return (local * run.world_size / total.clamp_min(1.0)).to(torch.float32)


class _CsvLog:
    """log.csv: a row per ``log_every`` steps; a resumed run drops the rows after its step."""

    def __init__(self, path: Path, resumed_at: int) -> None:
        self.path = path
        kept = []
        if resumed_at and path.exists():
            with path.open(newline='') as handle:
                kept = [row for row in csv.DictReader(handle)
                        if str(row.get('step')).isdigit() and int(row['step']) <= resumed_at]
        path.unlink(missing_ok=True)
        self.header = True
        for row in kept:
            self.write(**row)

    def write(self, **row) -> None:
        with self.path.open('a', newline='') as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if self.header:
                writer.writeheader()
                self.header = False
            writer.writerow(row)


def _seed(config: TrainConfig, fold: Fold, folds: Sequence[Fold]) -> int:
    """Return a fold's seed: by its place in the split, whichever folds a run selects."""
    return config.seed + 1 + [f.name for f in folds].index(fold.name)


def plan(config: TrainConfig, selected: Sequence[Fold], folds: Sequence[Fold],
         final_groups: Sequence[str]) -> str:
    """Return what a run trains: which folds, and whether (and on what) a final model."""
    names = ', '.join(f.name for f in selected)
    text = f'training {len(selected)} of {len(folds)} folds ({names}), {config.steps} steps each'
    if config.final_model:
        return text + f', then the final model on {", ".join(final_groups)} (final_model: true)'
    return text + '; no final model (final_model: false)'


def target_scale(config: TrainConfig, network: torch.nn.Module, data: DialogData
                 ) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """Return the (mean, std) per column the targets are standardised with, or None."""
    if not config.standardise_targets or hasattr(network, 'set_target_statistics'):
        return None
    return data.target_statistics()


def inference_settings(config: TrainConfig, network: torch.nn.Module, data: DialogData
                       ) -> InferenceConfig:
    """
    Return the inference settings a checkpoint of ``network`` trained on ``data`` runs with.

    They undo the targets' standardisation (:func:`target_scale`), and a model of the
    FaceVerse coefficients moves the head by its rotation relative to the training
    listeners' mean rotation (a circular mean per axis): their neutral head.
    """
    scale = target_scale(config, network, data)
    base = InferenceConfig() if scale is None else InferenceConfig(
        target_mean=tuple(float(v) for v in scale[0]),
        target_std=tuple(float(v) for v in scale[1]))
    if COEFFICIENTS.name not in config.targets:
        return base
    columns = stream_slices(data.streams)[COEFFICIENTS.name]
    start = columns.start + ROTATION_COLUMNS.start
    rotations = np.concatenate([t[v[:, start], start:start + 3]
                                for t, v in zip(data.targets, data.valid)]).astype(np.float64)
    neutral = np.arctan2(np.sin(rotations).mean(0), np.cos(rotations).mean(0))
    return replace(base, neutral_rotation=tuple(float(v) for v in neutral))


def _refuse_normalised_coefficients(config: TrainConfig, cache: FeatureCache) -> None:
    """Refuse a cache of normalised coefficients: the node maps raw FaceVerse units."""
    if COEFFICIENTS.name in config.targets and cache.source.get('normalised'):
        raise ConfigError(f'{cache.cache_dir} holds coefficients normalised with the mean '
                          'face; a checkpoint must predict them as released, since the node '
                          'maps raw FaceVerse rotations and expressions to the head and '
                          'blendshapes: prepare the cache without --normalise-coefficients')


def _refuse_other_training(config: TrainConfig, out_dir: Path) -> None:
    """Refuse to continue the networks saved in ``out_dir`` with settings that change them."""
    saved = out_dir / CONFIG_NAME
    trained = [d for d in sorted(out_dir.glob('*')) if has_training_state(d / 'last')]
    if not trained or not saved.is_file():
        return
    try:
        changes = config.training_changes(TrainConfig.from_yaml(saved))
    except ConfigError as error:
        raise ConfigError(f'{saved}: {error}') from None
    if changes:
        raise ConfigError(
            f'{out_dir} holds networks ({", ".join(d.name for d in trained)}) trained with '
            f'other settings ({"; ".join(changes)}). Refusing to continue them (a finished one '
            f'would be scored as it is): train into another --out, or delete {out_dir}')


def evaluate_fold(config: TrainConfig, model: TorchListenerModel, cache: FeatureCache,
                  fold: Fold, test: DialogData, settings: Optional[ListenerSettings]
                  ) -> Dict[str, Scores]:
    """Return the per-segment scores of a fold's test dialogs for each path."""
    scores = {'model': score_dialogs(test, predict_dialogs(model, test)),
              'neutral': score_dialogs(test, neutral_predictions(test))}
    if settings is not None and HEAD.name in config.targets and cache.role == LISTENING:
        threads = torch.get_num_threads()
        try:
            scores['streaming'] = score_dialogs(test, streaming_predictions(
                settings, model, cache.select(fold.test), test))
        finally:
            torch.set_num_threads(threads)  # the node's cpu_threads must not slow training
    return scores


def report(scores: Dict[str, Scores], floors: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Return a fold's (or all folds') figures: each path, gaps and floor ratios."""
    summaries = {path: summarize(s) for path, s in scores.items()}
    figures = {path: headlines(s) for path, s in summaries.items()}
    out: Dict[str, Any] = {'figures': figures, 'summaries': summaries,
                           'floor_ratio': floor_ratios(summaries['model'], floors)}
    if 'streaming' in figures:
        out['streaming_over_model'] = relative_gap(figures['streaming'], figures['model'])
    return out


def cross_validation(config: TrainConfig, run: Optional[Distributed] = None) -> Dict:
    """
    Train and score one fresh model per fold of the cache's split; return the results.

    Without ``run`` it joins the torchrun process group, if there is one, for the call.
    """
    if run is None:
        with distributed(config.device) as joined:
            return cross_validation(config, joined)
    out_dir = Path(config.out_dir)
    cache = FeatureCache(Path(config.cache_dir))
    _refuse_normalised_coefficients(config, cache)
    split = cache.split.restrict(config.groups)
    folds = split.folds()
    selected = split.folds(config.folds)
    settings = (load_listener_settings(config.listener_params or None)
                if config.streaming_eval and run.is_main else None)
    inputs = FrameInputs(config.input_config(), cache.feature_config, run.device)
    learns_mix = 'layer_mix' in {f.name for f in fields(network_type(
        config.model_type).config_type)}
    if inputs.config.layer_mix(cache.feature_config) and not learns_mix:
        raise ConfigError(f"inputs: speech_mix 'weighted' needs a network that learns the "
                          f'mix (causal_gru_mdn, causal_gru_flow), not {config.model_type}')
    _refuse_other_training(config, out_dir)
    if run.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / CONFIG_NAME).write_text(yaml.safe_dump(config.to_dict()))
        print(plan(config, selected, folds, split.final_groups))
    results: Dict[str, Any] = {}
    all_scores: Dict[str, Dict[str, Scores]] = {}
    for fold in selected:
        fold_dir = out_dir / f'fold{fold.name}'
        train = load_dialogs(cache, fold.train, config.targets, inputs)
        test = load_dialogs(cache, fold.test, config.targets, inputs)
        network = train_network(config, train, fold_dir, _seed(config, fold, folds), run,
                                inputs)
        if not run.is_main:
            continue
        inference = inference_settings(config, network, train)
        checkpoint = save_learned_checkpoint(fold_dir / CHECKPOINT_DIR, network.cpu(),
                                             cache.feature_config, inference,
                                             targets=config.targets, role=cache.role,
                                             inputs=inputs.config)
        model = TorchListenerModel(network, cache.feature_config, inference, device='cpu',
                                   targets=config.targets, inputs=inputs)
        all_scores[fold.name] = evaluate_fold(config, model, cache, fold, test, settings)
        results[fold.name] = {
            'train_groups': list(fold.train), 'test_groups': list(fold.test),
            'train_dialogs': len(train), 'test_dialogs': len(test),
            'parameters': count_parameters(network), 'checkpoint': str(checkpoint),
            **report(all_scores[fold.name], cache.floors)}
        (fold_dir / 'metrics.json').write_text(json.dumps(results[fold.name], indent=2))
        print(fold_line(fold.name, results[fold.name]))
    if config.final_model:
        everything = load_dialogs(cache, split.final_groups, config.targets, inputs)
        network = train_network(config, everything, out_dir / 'final', config.seed, run,
                                inputs)
        if run.is_main:
            save_learned_checkpoint(out_dir / 'final' / CHECKPOINT_DIR, network.cpu(),
                                    cache.feature_config,
                                    inference_settings(config, network, everything),
                                    targets=config.targets, role=cache.role,
                                    inputs=inputs.config)
    if not run.is_main:
        return {}
    summary = {'folds': results, 'cross_validation': overall(all_scores, cache.floors),
               'split': split.to_dict(), 'role': cache.role, 'config': config.to_dict()}
    (out_dir / 'results.json').write_text(json.dumps(summary, indent=2))
    return summary


def overall(fold_scores: Dict[str, Dict[str, Scores]], floors: Optional[Dict[str, Any]]
            ) -> Dict[str, Any]:
    """Return every fold's segments together, and the spread of the fold figures."""
    paths = {path for scores in fold_scores.values() for path in scores}
    merged: Dict[str, Scores] = {}
    for path in paths:
        for scores in fold_scores.values():
            for name, figures in scores.get(path, {}).items():
                for figure, items in figures.items():
                    merged.setdefault(path, {}).setdefault(name, {}).setdefault(
                        figure, []).extend(items)
    out = report(merged, floors)
    per_fold = {fold: {path: headlines(summarize(s)) for path, s in scores.items()}
                for fold, scores in fold_scores.items()}
    out['fold_spread'] = {
        path: {name: {figure: fold_spread([f[path][name][figure] for f in per_fold.values()
                                           if f.get(path, {}).get(name, {}).get(figure)])
                      for figure in figures}
               for name, figures in merged[path].items()}
        for path in merged}
    return out


def fold_line(name: str, fold: Dict[str, Any]) -> str:
    """Return a one-line summary of a fold's head figures (or its first stream's)."""
    figures = fold['figures']
    stream = HEAD.name if HEAD.name in figures['model'] else next(iter(figures['model']))
    parts = []
    for figure, value in figures['model'][stream].items():
        if value is None:
            continue
        text = f'{figure} {value:.3f} (neutral {figures["neutral"][stream][figure]:.3f}'
        if 'streaming' in figures and figures['streaming'][stream][figure] is not None:
            text += f', streaming {figures["streaming"][stream][figure]:.3f}'
        ratio = fold['floor_ratio'].get(stream, {}).get(figure)
        text += f', {ratio:.2f}x floor)' if ratio is not None else ')'
        parts.append(text)
    return f'fold {name}: {stream} ' + '; '.join(parts)

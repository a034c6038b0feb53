"""
Leave-one-session-out training of a learned listener, on one CPU/GPU or many via torchrun.

For every test session a **freshly initialised** network is trained on the other sessions
(AdamW, warm-up + cosine learning rate, gradient clipping, EMA of the weights, bf16 autocast
on CUDA), then its EMA weights are exported as a node-loadable checkpoint and scored on the
held-out session through :meth:`TorchListenerModel.predict`, the batched path of the deployed
model. Under ``torchrun`` each process trains on its share of every batch
(:class:`DistributedSampler` + :class:`DistributedDataParallel`); rank 0 logs, saves and scores.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
import itertools
import json
import math
import os
from pathlib import Path
import time
from typing import Dict, List, Optional

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm
import yaml

from listener_head_ros.data.feature_cache import FeatureCache
from listener_head_ros.eval.head_metrics import (
    aggregate, cross_validate, neutral_baseline, utterance_metrics, UtteranceMetrics)
from listener_head_ros.models.device import resolve_device
from listener_head_ros.models.frame_features import feature_statistics
from listener_head_ros.models.learned import save_learned_checkpoint, TorchListenerModel
from listener_head_ros.models.networks import build_network, count_parameters
from listener_head_ros.training.config import TrainConfig
from listener_head_ros.training.dataset import FoldData, ListenerCrops, load_fold
from listener_head_ros.training.resume import (
    has_training_state, load_training_state, save_training_state)

CHECKPOINT_DIR = 'checkpoint'  # inside each fold directory: what the node loads


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


def init_distributed(device: str = 'auto') -> Distributed:
    """Join the torchrun process group if there is one (NCCL on CUDA, else gloo)."""
    resolved, warning = resolve_device(device)
    if warning:
        print(f'warning: {warning}')
    world_size = int(os.environ.get('WORLD_SIZE', '1'))
    if world_size == 1:
        return Distributed(0, 1, resolved)
    local_rank = int(os.environ.get('LOCAL_RANK', '0'))
    if resolved.startswith('cuda'):
        torch.cuda.set_device(local_rank)
        resolved = f'cuda:{local_rank}'
    if not dist.is_initialized():
        dist.init_process_group('nccl' if resolved.startswith('cuda') else 'gloo')
    return Distributed(dist.get_rank(), dist.get_world_size(), resolved)


def learning_rate(config: TrainConfig, step: int) -> float:
    """Return the learning rate at ``step``: linear warm-up, then cosine decay to 10 %."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.learning_rate * (0.1 + 0.45 * (1.0 + math.cos(math.pi * min(progress, 1.0))))


def train_network(config: TrainConfig, data: FoldData, fold_dir: Path, seed: int,
                  run: Distributed) -> torch.nn.Module:
    """Train a fresh network on ``data``; return its EMA copy (resumes from ``fold_dir``)."""
    if config.batch_size % run.world_size:
        raise ValueError(f'batch_size {config.batch_size} must be divisible by the number of '
                         f'processes ({run.world_size})')
    torch.manual_seed(seed)
    network = build_network(config.model_type, config.model)
    network.norm.set_statistics(*feature_statistics(data.features))
    network.to(run.device)
    ema = AveragedModel(network, avg_fn=_ema_with_warmup(config.ema_decay), use_buffers=True)
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    step, epoch, skip = 0, 0, 0  # skip: batches of ``epoch`` trained before a resume
    state_dir = fold_dir / 'last'
    if has_training_state(state_dir):
        step, epoch, skip = load_training_state(state_dir, network, ema, optimizer)
        if run.is_main:
            print(f'resumed {fold_dir.name} at step {step}')
    trainer = _TrainingLoss(network)
    if run.enabled:
        trainer = DistributedDataParallel(trainer)
    dataset = ListenerCrops(data, config.crop_frames, seed)
    sampler = DistributedSampler(dataset, run.world_size, run.rank, shuffle=True, seed=seed,
                                 drop_last=True)
    loader = DataLoader(dataset, batch_size=config.batch_size // run.world_size,
                        sampler=sampler, drop_last=True)
    if len(loader) == 0:
        raise ValueError(f'{len(dataset)} utterances are too few for batch_size '
                         f'{config.batch_size}')
    autocast = run.device.startswith('cuda') and config.mixed_precision
    if run.is_main:
        fold_dir.mkdir(parents=True, exist_ok=True)
    log = _CsvLog(fold_dir / 'log.csv') if run.is_main else None
    progress = tqdm(total=config.steps, initial=step, desc=fold_dir.name,
                    disable=not run.is_main, dynamic_ncols=True)
    start = time.monotonic()
    while step < config.steps:
        sampler.set_epoch(epoch)
        dataset.set_epoch(epoch)
        for batch, (x, y, mask) in enumerate(itertools.islice(loader, skip, None), skip + 1):
            if step >= config.steps:
                break
            for group in optimizer.param_groups:
                group['lr'] = learning_rate(config, step)
            x, y, mask = (t.to(run.device, non_blocking=True) for t in (x, y, mask))
            with torch.autocast('cuda', dtype=torch.bfloat16, enabled=autocast):
                loss = trainer(x, y, mask)
            loss = loss * _frame_share(mask, run)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(network.parameters(), config.grad_clip)
            optimizer.step()
            ema.update_parameters(network)
            step += 1
            progress.update(1)
            if log is not None and (step % config.log_every == 0 or step == config.steps):
                log.write(step=step, loss=float(loss.detach()), lr=learning_rate(config, step - 1),
                          seconds=round(time.monotonic() - start, 2))
                progress.set_postfix(loss=f'{float(loss.detach()):.4f}')
            if run.is_main and step % config.checkpoint_every == 0:
                save_training_state(state_dir, network, ema, optimizer, step, epoch, batch)
        epoch, skip = epoch + 1, 0
    progress.close()
    if run.is_main:
        save_training_state(state_dir, network, ema, optimizer, step, epoch)
    return ema.module


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
    """The network's training loss as a forward pass, so that DDP's gradient hooks see it."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.network.training_loss(x, y, mask)


def _frame_share(mask: torch.Tensor, run: Distributed) -> float:
    """
    Return the factor that turns this process's frame-mean loss into its share of the global one.

    DDP averages gradients over processes; processes with more valid frames must weigh more,
    so that the result equals the frame-mean over the whole batch, as in one process.
    """
    if not run.enabled:
        return 1.0
    local = mask.sum().to(torch.float64)
    total = local.clone()
    dist.all_reduce(total)
    return float(local * run.world_size / total.clamp_min(1.0))


class _CsvLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.header = not path.exists()

    def write(self, **row) -> None:
        with self.path.open('a', newline='') as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if self.header:
                writer.writeheader()
                self.header = False
            writer.writerow(row)


def evaluate(model: TorchListenerModel, data: FoldData) -> List[UtteranceMetrics]:
    """Score ``model`` on every utterance of ``data`` with the Active Listener protocol."""
    scores = []
    for features, head in zip(data.features, data.heads):
        poses, _ = model.predict(features)
        scores.append(utterance_metrics(poses[:, 0], head))
    return scores


def cross_validation(config: TrainConfig, run: Optional[Distributed] = None) -> Dict:
    """Train and score one fresh model per held-out session; return the results (rank 0)."""
    run = run or init_distributed(config.device)
    out_dir = Path(config.out_dir)
    cache = FeatureCache(Path(config.cache_dir))
    missing = sorted(set(config.sessions) - set(cache.sessions))
    if missing:
        raise ValueError(f'sessions {missing} are not in the cache {config.cache_dir} '
                         f'(it holds {cache.sessions})')
    if run.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / 'train_config.yaml').write_text(yaml.safe_dump(config.to_dict()))
    fold_scores, baseline_scores, folds = {}, {}, {}
    for test_session in config.test_folds:
        fold_dir = out_dir / f'fold{test_session}'
        train = load_fold(cache, [s for s in config.sessions if s != test_session])
        test = load_fold(cache, [test_session])
        seed = config.seed + test_session
        network = train_network(config, train, fold_dir, seed, run)
        if not run.is_main:
            continue
        checkpoint = save_learned_checkpoint(fold_dir / CHECKPOINT_DIR, network.cpu(),
                                             cache.feature_config)
        model = TorchListenerModel(network, cache.feature_config, device='cpu')
        scores = evaluate(model, test)
        fold_scores[test_session] = scores
        baseline_scores[test_session] = neutral_baseline(test.heads)
        summary = aggregate(scores).to_dict()
        folds[test_session] = {
            'test': summary, 'neutral_baseline': baseline_scores[test_session].to_dict(),
            'train_utterances': len(train), 'test_utterances': len(test),
            'parameters': count_parameters(network), 'checkpoint': str(checkpoint)}
        (fold_dir / 'metrics.json').write_text(json.dumps(folds[test_session], indent=2))
        print(f'fold {test_session}: MAE {summary["mae_mean_deg"]:.3f} deg '
              f'(neutral {folds[test_session]["neutral_baseline"]["mae_mean_deg"]:.3f})')
    if config.final_model:
        network = train_network(config, load_fold(cache, config.sessions), out_dir / 'final',
                                config.seed, run)
        if run.is_main:
            save_learned_checkpoint(out_dir / 'final' / CHECKPOINT_DIR, network.cpu(),
                                    cache.feature_config)
    if not run.is_main:
        return {}
    results = {'folds': folds, 'cross_validation': cross_validate(fold_scores).to_dict(),
               'config': config.to_dict()}
    (out_dir / 'results.json').write_text(json.dumps(results, indent=2))
    return results

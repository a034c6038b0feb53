"""The text-aware vs audio-only experiment runs end to end and scores against its references."""

import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'training'))

import run_text_synthetic  # noqa: E402


def test_the_experiment_scores_both_variants_against_the_references(tmp_path):
    """A few steps on a small corpus: every row is computed, the references are ordered."""
    torch.set_num_threads(1)
    code = run_text_synthetic.main(['--out', str(tmp_path), '--steps', '3', '--dialogs', '2',
                                    '--folds', '3'])
    summary = json.loads((tmp_path / 'text_results.json').read_text())
    assert code == (0 if summary['met'] else 1)
    table = summary['text_driven_mae']
    assert set(table) == {'text_aware', 'audio_only', 'text_oracle', 'audio_only_bound',
                          'neutral'}
    assert len({row['frames'] for row in table.values()}) == 1 and table['neutral']['frames']
    assert table['text_oracle']['mae_deg'] < 0.7 < table['audio_only_bound']['mae_deg']
    assert summary['text_over_audio_only'] == (table['text_aware']['mae_deg']
                                               / table['audio_only']['mae_deg'])
    assert set(summary['streaming_over_model']['text_aware']) == {'3'}

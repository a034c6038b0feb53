"""
Tiny random ``transformers`` encoders saved to a directory, for tests and benchmarks.

Nothing can be downloaded here, so the tests build small configs of the real model classes
(wav2vec2, HuBERT, WavLM, BERT) with fixed seeds and save them as a hub directory would hold
them; the loading code under test is the one that reads a real pretrained model.
"""

from pathlib import Path
from typing import Dict

import torch

TINY_SPEECH: Dict[str, object] = dict(
    hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
    conv_dim=(16, 16, 16), conv_stride=(5, 4, 4), conv_kernel=(10, 4, 4),
    num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2)
"""A speech encoder of 80-sample frames (200 per second at 16 kHz)."""
BASE_SPEECH: Dict[str, object] = {}
"""The base models' sizes are the configs' defaults (12 layers of 768, 95M parameters)."""
TEXT_VOCABULARY = ('[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'really', 'yes', 'no', 'the',
                   'a', 'okay', 'well', '?', '.', ',', '!')


def save_speech_encoder(directory: Path, kind: str = 'wav2vec2', seed: int = 0,
                        sizes: Dict[str, object] = TINY_SPEECH) -> Path:
    """Save a random speech encoder of ``kind`` (wav2vec2, hubert, wavlm) to ``directory``."""
    import transformers

    classes = {'wav2vec2': (transformers.Wav2Vec2Config, transformers.Wav2Vec2Model),
               'hubert': (transformers.HubertConfig, transformers.HubertModel),
               'wavlm': (transformers.WavLMConfig, transformers.WavLMModel)}
    config_type, model_type = classes[kind]
    torch.manual_seed(seed)
    model_type(config_type(**sizes)).save_pretrained(directory)
    return Path(directory)


def save_text_encoder(directory: Path, seed: int = 0) -> Path:
    """Save a random one-layer BERT and its word-piece tokenizer to ``directory``."""
    import transformers

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / 'vocab.txt').write_text('\n'.join(TEXT_VOCABULARY) + '\n')
    transformers.BertTokenizerFast(vocab_file=str(directory / 'vocab.txt')).save_pretrained(
        directory)
    torch.manual_seed(seed)
    transformers.BertModel(transformers.BertConfig(
        vocab_size=len(TEXT_VOCABULARY), hidden_size=16, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=32, max_position_embeddings=128)
    ).save_pretrained(directory)
    return directory

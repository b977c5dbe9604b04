import pytest

from gpt_mini.tokenizer import SPECIAL_TOKENS, CharTokenizer


def test_round_trip_with_special_tokens():
    tok = CharTokenizer.from_text("hello world? 12+3=15")
    text = "<|user|>hello 12+3=?<|end|><|assistant|>15<|end|>"
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert ids[0] == tok.special_id("<|user|>") == SPECIAL_TOKENS.index("<|user|>")
    assert len(ids) == len(text) - sum(len(s) - 1 for s in ["<|user|>", "<|end|>", "<|assistant|>", "<|end|>"])


def test_vocab_is_sorted_chars_after_specials():
    tok = CharTokenizer.from_text("cab")
    assert tok.vocab_size == len(SPECIAL_TOKENS) + 3
    assert tok.encode("abc") == [len(SPECIAL_TOKENS) + i for i in range(3)]


def test_unknown_character_and_bad_id_are_clear_errors():
    tok = CharTokenizer.from_text("ab")
    with pytest.raises(ValueError, match="'z' at position 1"):
        tok.encode("az")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([99])


def test_to_dict_round_trip():
    tok = CharTokenizer.from_text("xyz <|")
    assert CharTokenizer.from_dict(tok.to_dict()) == tok
    assert tok.encode("<|") == [tok.stoi["<"], tok.stoi["|"]]   # a lone "<|" is just two characters

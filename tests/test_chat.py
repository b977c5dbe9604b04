"""The chat template: tokens only, the learned-token weights, render/parse, and a reply parser that never raises."""
import numpy as np
import pytest

from gpt_mini import chat, world

TOK = world.tokenizer()
USER, ASSISTANT, END = (TOK.special_id(t) for t in (chat.USER, chat.ASSISTANT, chat.END))

CASES = [
    [("user", "where does ada live?")],
    [("user", "what is 2+3?"), ("assistant", "2+3=5.")],
    [("user", "hi"), ("assistant", "ada lives in oslo."), ("user", "1+1=?"), ("assistant", "1+1=2.")],
    [("user", ""), ("assistant", "")],
]


def spans(turns):
    """The expected weights, built independently of render: 1 exactly on assistant text and its <|end|>."""
    out = []
    for role, text in turns:
        out += [0] + [int(role == "assistant")] * (len(text) + 1)
    return out


@pytest.mark.parametrize("turns", CASES)
def test_weights_are_exactly_the_assistant_text_and_its_end(turns):
    ids, weights = chat.render(turns)
    assert weights == spans(turns) and len(ids) == len(weights)
    for i, w in zip(ids, weights):
        if i in (USER, ASSISTANT):
            assert w == 0                                      # role tokens are never learned
    learned_ends = [w for i, w in zip(ids, weights) if i == END]
    assert learned_ends == [int(role == "assistant") for role, _ in turns]


@pytest.mark.parametrize("turns", CASES)
def test_render_parse_round_trip(turns):
    ids, _ = chat.render(turns)
    assert chat.parse(ids) == turns
    prompt, w = chat.render(turns, generation_prompt=True) if turns[-1][0] == "user" else (None, None)
    if prompt:
        assert prompt[-1] == ASSISTANT and w[-1] == 0
        assert chat.parse(prompt) == turns + [("assistant", "")]


@pytest.mark.parametrize("bad,match", [
    ([], "at least one turn"),
    ([("assistant", "hi")], "turn 0 is 'assistant'"),
    ([("user", "a"), ("user", "b")], "turn 1 is 'user'"),
    ([("user", "<|end|>")], "special token"),
    ([("user", "a\nb")], "newline"),
])
def test_malformed_conversations_are_refused_with_a_reason(bad, match):
    with pytest.raises(ValueError, match=match):
        chat.render(bad)


def test_parse_refuses_text_outside_a_turn():
    with pytest.raises(ValueError, match="expected a role token"):
        chat.parse(TOK.encode("hi"))
    with pytest.raises(ValueError, match="never ended"):
        chat.parse([USER] + TOK.encode("a") + [ASSISTANT])


def test_reply_never_raises_and_reads_what_a_model_wrote():
    r = chat.reply(TOK.encode("paris.") + [END] + [USER] + TOK.encode("x"))
    assert r == {"text": "paris.", "ended": True, "user_turn": True}
    assert chat.reply([]) == {"text": "", "ended": False, "user_turn": False}
    rng = np.random.default_rng(0)
    for _ in range(200):
        r = chat.reply(rng.integers(0, TOK.vocab_size, rng.integers(0, 40)))
        assert "<|" not in r["text"]

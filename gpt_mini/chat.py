"""The chat template: a conversation as tokens, and which of them the model learns to write.

The protocol is made only of special tokens the tokenizer reserved from the start, one id each:

    <|user|>where does ada live?<|end|><|assistant|>paris<|end|><|user|>...

A role token opens a turn and `<|end|>` closes it. At inference the prompt is the conversation so far followed by
`<|assistant|>` (the "generation prompt"): the model writes the reply and ends it with `<|end|>`, where a chat
program stops reading. Nothing else marks a turn, so the model can only tell who is speaking from these tokens.

`weights` says which tokens the SFT loss learns: the assistant's text and the `<|end|>` that closes its turn
(supervising the end is what teaches the model to stop). Not the `<|assistant|>` role token itself: the chat
program always writes it, so the model never has to predict it, and learning it would teach the model to open
assistant turns unprompted. Not the user's turns: the model should answer them, not learn to write them.
"""

from . import world

USER, ASSISTANT, END = "<|user|>", "<|assistant|>", "<|end|>"
ROLES = {"user": USER, "assistant": ASSISTANT}


def check(turns):
    """A conversation is a list of (role, text) turns, alternating user / assistant, starting with the user."""
    if not turns:
        raise ValueError("a conversation needs at least one turn")
    for i, (role, text) in enumerate(turns):
        expected = "user" if i % 2 == 0 else "assistant"
        if role != expected:
            raise ValueError(f"turn {i} is {role!r}; turns alternate user, assistant, ... starting with the user")
        if "<|" in text or "\n" in text:
            raise ValueError(f"turn {i} contains a special token or a newline: {text!r}")


def render(turns, generation_prompt=False):
    """The conversation as token ids, and per token whether the SFT loss learns it (1) or not (0).

    generation_prompt=True ends with `<|assistant|>`: the prompt a chat program gives the model to answer."""
    check(turns)
    tok = world.tokenizer()
    ids, weights = [], []
    for role, text in turns:
        learned = 1 if role == "assistant" else 0
        body = tok.encode(text) + [tok.special_id(END)]
        ids += [tok.special_id(ROLES[role])] + body
        weights += [0] + [learned] * len(body)          # the role token: 0; the text and its <|end|>: the role's
    if generation_prompt:
        ids.append(tok.special_id(ASSISTANT))
        weights.append(0)
    return ids, weights


def parse(ids):
    """Token ids back into (role, text) turns; an unfinished last turn is returned as far as it goes.

    Text before the first role token, or a role token inside a turn that never ended, is an error: a model's
    output is parsed with `reply` instead, which never raises."""
    tok = world.tokenizer()
    role_of = {tok.special_id(t): r for r, t in ROLES.items()}
    end = tok.special_id(END)
    turns, role, text = [], None, []
    for i in ids:
        i = int(i)
        if role is None:
            if i not in role_of:
                raise ValueError(f"expected a role token, got {tok.decode([i])!r}")
            role, text = role_of[i], []
        elif i == end:
            turns.append((role, tok.decode(text)))
            role = None
        elif i in role_of:
            raise ValueError(f"{tok.decode([i])} inside a {role} turn that never ended")
        else:
            text.append(i)
    if role is not None:
        turns.append((role, tok.decode(text)))
    return turns


def reply(ids):
    """What a model wrote after the generation prompt: (its text up to `<|end|>`, whether it ended its turn,
    whether it went on to write a user turn). Never raises: any ids are a reply, however malformed."""
    tok = world.tokenizer()
    end, user = tok.special_id(END), tok.special_id(USER)
    ids = [int(i) for i in ids]
    stop = ids.index(end) if end in ids else len(ids)
    text = "".join(tok.decode([i]) for i in ids[:stop] if i >= len(tok.specials))   # stray specials dropped
    return {"text": text, "ended": end in ids, "user_turn": user in ids}

"""A character-level tokenizer with a few reserved special tokens.

One character is one token, so every id the model sees can be read back by eye. The special tokens are whole
strings like `<|user|>` that encode to a single id each; they are what the SFT chat template is made of, and
reserving them from the start keeps the vocabulary (and so the checkpoint) identical across all five stages.
"""

from dataclasses import dataclass

# ids 0..len(SPECIAL_TOKENS)-1; the chat template (lesson 03) is spelled with these
SPECIAL_TOKENS = ("<|pad|>", "<|user|>", "<|assistant|>", "<|end|>")


@dataclass(frozen=True)
class CharTokenizer:
    chars: str                                # the ordinary characters, in id order
    specials: tuple = SPECIAL_TOKENS

    @classmethod
    def from_text(cls, text, specials=SPECIAL_TOKENS):
        """The sorted set of characters in `text`, after the special tokens."""
        return cls("".join(sorted(set(text))), tuple(specials))

    @property
    def vocab_size(self):
        return len(self.specials) + len(self.chars)

    @property
    def stoi(self):
        table = {s: i for i, s in enumerate(self.specials)}
        table.update({c: len(self.specials) + i for i, c in enumerate(self.chars)})
        return table

    def special_id(self, token):
        return self.specials.index(token)

    def encode(self, text):
        """Ids for `text`; a special token's string becomes its one id."""
        stoi, ids, i = self.stoi, [], 0
        while i < len(text):
            if text.startswith("<|", i):
                token = next((s for s in self.specials if text.startswith(s, i)), None)
                if token is not None:
                    ids.append(stoi[token])
                    i += len(token)
                    continue
            if text[i] not in stoi:
                raise ValueError(f"character {text[i]!r} at position {i} is not in the vocabulary")
            ids.append(stoi[text[i]])
            i += 1
        return ids

    def decode(self, ids):
        n = len(self.specials)
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"token id {i} is outside the vocabulary [0, {self.vocab_size})")
            out.append(self.specials[i] if i < n else self.chars[i - n])
        return "".join(out)

    def to_dict(self):
        return {"chars": self.chars, "specials": list(self.specials)}

    @classmethod
    def from_dict(cls, d):
        return cls(d["chars"], tuple(d["specials"]))

"""The toy world every stage draws its data from: seeded, small, and rich enough to teach each stage something.

The world has people, each with a home city, a pet and a job, and it has arithmetic. Pretraining sees it as raw
text: facts, sentences from a small grammar, sums written out, and quiz pages full of unanswered questions (the
raw material that shows, in lesson 02, a pretrained model continuing a question instead of answering it).
Later stages reuse the same people and numbers as conversations, reasoning traces, preference pairs and
verifiable prompts, so that each lesson's model is the previous one's, trained a little further.

Everything is a pure function of a seed: no downloads, nothing fetched at run time.
"""

import random
import re
from dataclasses import dataclass

from .tokenizer import CharTokenizer

# ----------------------------------------------------------------------------- the world's contents

NAMES = ("ada", "bob", "cleo", "dan", "eve", "finn", "gus", "hana", "ivy", "jon", "kai", "lea")
CITIES = ("paris", "rome", "oslo", "lima", "cairo", "tokyo")
PETS = ("cat", "dog", "owl", "fox", "fish", "frog")
JOBS = ("baker", "pilot", "nurse", "farmer", "painter", "doctor")

# the grammar: S -> NP VP "." ; NP -> "the" [ADJ] NOUN ; VP -> VERB NP | VERB "in the" PLACE
ADJECTIVES = ("big", "small", "red", "old", "happy", "quiet")
NOUNS = ("dog", "cat", "bird", "ball", "tree", "boat", "child", "house")
VERBS = ("sees", "likes", "finds", "takes", "watches", "follows")
PLACES = ("park", "garden", "city", "river")

ALPHABET = "\n abcdefghijklmnopqrstuvwxyz0123456789.,?+="   # every character any stage may emit

SUM_MAX_A, SUM_MAX_B = 99, 9   # pretraining sums: a + b with a two-digit a and a one-digit b


def tokenizer():
    """The one tokenizer of every stage: the world's alphabet after the reserved special tokens."""
    return CharTokenizer.from_text(ALPHABET)


@dataclass(frozen=True)
class Person:
    name: str
    city: str
    pet: str
    job: str


def people(seed=0):
    """The world's people, with attributes assigned by a seeded draw (fixed for every stage)."""
    rng = random.Random(f"people-{seed}")

    def balanced(values):   # each value used equally often, so no answer wins by being common
        column = (list(values) * len(NAMES))[:len(NAMES)]
        rng.shuffle(column)
        return column
    cities, pets, jobs = balanced(CITIES), balanced(PETS), balanced(JOBS)
    return tuple(Person(n, cities[i], pets[i], jobs[i]) for i, n in enumerate(NAMES))


# ----------------------------------------------------------------------------- sentences, one kind each

FACT_TEMPLATES = {
    "city": ("{name} lives in {city}.", "{name} lives in"),
    "pet": ("{name} has a {pet}.", "{name} has a"),
    "job": ("{name} works as a {job}.", "{name} works as a"),
}
# How a user may ask for each fact. The first phrasing of each is the one the quiz pages ask (QUESTION_TEMPLATES); SFT
# trains on TRAIN_PHRASINGS and is scored on HELD_OUT_PHRASINGS too, which it never sees.
TRAIN_PHRASINGS = {
    "city": ("where does {name} live?", "which city does {name} live in?"),
    "pet": ("what pet does {name} have?", "which animal does {name} have?"),
    "job": ("what does {name} do?", "what is the job of {name}?"),
}
HELD_OUT_PHRASINGS = {
    "city": "in which city is {name}?",
    "pet": "tell me the pet of {name}.",
    "job": "what work does {name} do?",
}
QUESTION_TEMPLATES = {relation: phrasings[0] for relation, phrasings in TRAIN_PHRASINGS.items()}


def fact(person, relation):
    return FACT_TEMPLATES[relation][0].format(**person.__dict__)


def grammar_sentence(rng):
    def noun_phrase():
        adj = rng.choice(ADJECTIVES) + " " if rng.random() < 0.6 else ""
        return f"the {adj}{rng.choice(NOUNS)}"
    if rng.random() < 0.75:
        return f"{noun_phrase()} {rng.choice(VERBS)} {noun_phrase()}."
    return f"{noun_phrase()} {rng.choice(VERBS)} in the {rng.choice(PLACES)}."


GRAMMATICAL = re.compile(
    r"the (?:(?:{a}) )?(?:{n}) (?:{v}) (?:the (?:(?:{a}) )?(?:{n})|in the (?:{p}))\.".format(
        a="|".join(ADJECTIVES), n="|".join(NOUNS), v="|".join(VERBS), p="|".join(PLACES)))


def is_grammatical(sentence):
    """Whether a sentence is one the grammar can produce (used to score a model's samples)."""
    return GRAMMATICAL.fullmatch(sentence.strip()) is not None


def sum_sentence(a, b):
    return f"{a}+{b}={a + b}."


def held_out_sums(seed=0, fraction=0.15):
    """The (a, b) pairs pretraining never shows: its accuracy on them measures arithmetic, not recall."""
    rng = random.Random(f"held-out-sums-{seed}")
    pairs = [(a, b) for a in range(SUM_MAX_A + 1) for b in range(SUM_MAX_B + 1)]
    return frozenset(rng.sample(pairs, int(len(pairs) * fraction)))


# ----------------------------------------------------------------------------- the pretraining corpus

@dataclass(frozen=True)
class CorpusConfig:
    n_docs: int = 6000
    val_fraction: float = 0.1
    seed: int = 0


def _document(rng, world, held_out, split):
    """One line of text: a few sentences of one kind (facts, prose, sums, or a quiz page of questions)."""
    kind = rng.choices(("facts", "prose", "sums", "quiz", "mixed"), weights=(2, 3, 5, 1, 2))[0]
    n = rng.randint(3, 6)
    sentences = []
    for _ in range(n):
        k = rng.choice(("facts", "prose", "sums")) if kind == "mixed" else kind
        if k == "facts":
            sentences.append(fact(rng.choice(world), rng.choice(tuple(FACT_TEMPLATES))))
        elif k == "prose":
            sentences.append(grammar_sentence(rng))
        elif k == "sums":
            while True:
                a, b = rng.randint(0, SUM_MAX_A), rng.randint(0, SUM_MAX_B)
                # held-out pairs never reach training; validation may use any pair
                if split == "val" or (a, b) not in held_out:
                    break
            sentences.append(sum_sentence(a, b))
        else:
            if rng.random() < 0.5:
                sentences.append(QUESTION_TEMPLATES[rng.choice(tuple(QUESTION_TEMPLATES))]
                                 .format(name=rng.choice(world).name))
            else:
                sentences.append(f"what is {rng.randint(0, SUM_MAX_A)}+{rng.randint(0, SUM_MAX_B)}?")
    return " ".join(sentences)


def pretrain_corpus(config=CorpusConfig()):
    """(train_text, val_text): documents one per line; the splits are disjoint, seeded documents."""
    world = people(config.seed)
    held_out = held_out_sums(config.seed)
    rng = random.Random(f"corpus-{config.seed}")
    n_val = int(config.n_docs * config.val_fraction)
    val = [_document(rng, world, held_out, "val") for _ in range(n_val)]
    val_set = set(val)
    train = []
    while len(train) < config.n_docs - n_val:
        doc = _document(rng, world, held_out, "train")
        if doc not in val_set:   # a short document can repeat by chance: keep the splits disjoint
            train.append(doc)
    return "\n".join(train) + "\n", "\n".join(val) + "\n"


# ----------------------------------------------------------------------------- what pretraining is scored on

def fact_probes(seed=0):
    """(relation, prompt, answer) for every fact: does the model complete "ada lives in" with her city?"""
    return [(rel, FACT_TEMPLATES[rel][1].format(**p.__dict__), getattr(p, rel))
            for p in people(seed) for rel in FACT_TEMPLATES]


def sum_probes(seed=0, n=100):
    """(prompt, answer) for sums pretraining never saw."""
    rng = random.Random(f"sum-probes-{seed}")
    pairs = sorted(held_out_sums(seed))
    return [(f"{a}+{b}=", str(a + b)) for a, b in rng.sample(pairs, min(n, len(pairs)))]


def question_probes(seed=0):
    """Questions a user might ask; a pretrained model continues them instead of answering."""
    world = people(seed)
    return [QUESTION_TEMPLATES["city"].format(name=world[0].name),
            QUESTION_TEMPLATES["pet"].format(name=world[1].name),
            "what is 23+4?"]


# ----------------------------------------------------------------------------- conversations (SFT onwards)

SUM_PHRASINGS = ("what is {a}+{b}?", "{a}+{b}=?")


def held_out_facts(seed=0, per_relation=3):
    """(name, relation) pairs SFT never asks about in training: the model knows them from pretraining, so
    answering them after SFT shows that SFT taught the format, not the facts."""
    rng = random.Random(f"held-out-facts-{seed}")
    return frozenset((name, rel) for rel in FACT_TEMPLATES for name in rng.sample(NAMES, per_relation))


# ----------------------------------------------------------------------------- preferences (DPO)

# People the world does not contain: nothing in pretraining says where they live. SFT sees a few refusals about
# the DEMO_UNKNOWN ones (so the behaviour exists, rarely); DPO's pairs ask about DPO_UNKNOWN; both are scored on
# HELD_OUT_UNKNOWN, which no stage's training data ever mentions.
UNKNOWN_NAMES = ("zed", "mia", "otto", "rosa", "noor", "tess", "uma", "vik", "wes", "yara", "zoe", "ben", "liv",
                 "max", "nia", "ole", "pia", "quin", "rex", "sam")
DEMO_UNKNOWN = UNKNOWN_NAMES[:3]
HELD_OUT_UNKNOWN = UNKNOWN_NAMES[-6:]
DPO_UNKNOWN = UNKNOWN_NAMES[3:-6]
REFUSAL = "i do not know."       # what a model should say about someone the world does not contain

namespace LLMTune.Engine.TinyModel;

/// <summary>One single-turn chat exchange of the tiny model's corpus.</summary>
public sealed record TinyExample(string Family, string Prompt, string Answer);

/// <summary>Settings for <see cref="TinyCorpus.Generate"/>.</summary>
public sealed record TinyCorpusOptions
{
    /// <summary>Seeds the draw of training exchanges and the pick of held-out prompts (the recipe sets it to its own seed).</summary>
    public int Seed { get; init; } = 1234;

    /// <summary>How many training exchanges to draw (with repetition) from the training combinations.</summary>
    public int TrainingExamples { get; init; } = 40_000;

    /// <summary>At most this many held-out prompts per family are kept for evaluation.</summary>
    public int HeldOutPerFamily { get; init; } = 40;

    /// <summary>Share of training exchanges that carry a system message, so a system prompt does not derail the model.</summary>
    public double SystemPromptShare { get; init; } = 0.03;
}

/// <summary>
/// The tiny model's corpus: training exchanges and a held-out evaluation set, generated deterministically from a seed.
/// Every family enumerates all of its (item, phrasing) combinations and splits them by a fixed rule before any
/// sampling, so no held-out prompt can appear in training: facts and word operations hold out one phrasing per item
/// (each item is still seen in training under other phrasings, each phrasing with other items), arithmetic holds out
/// one phrasing per operand pair, and chat turns hold out combinations of opening, question and punctuation.
/// </summary>
public sealed class TinyCorpus
{
    public const string SystemPrompt = "You are LLMTune Tiny, a small helpful assistant.";

    private TinyCorpus(IReadOnlyList<TinyExample> training, IReadOnlyList<TinyExample> heldOut,
        IReadOnlyList<string> families, IReadOnlyList<(string? System, TinyExample Example)> trainingTurns)
    {
        Training = training;
        HeldOut = heldOut;
        Families = families;
        TrainingTurns = trainingTurns;
    }

    /// <summary>The training exchanges, in training order (shuffled, with repetition).</summary>
    public IReadOnlyList<TinyExample> Training { get; }

    /// <summary>The same exchanges with the system message some of them carry.</summary>
    public IReadOnlyList<(string? System, TinyExample Example)> TrainingTurns { get; }

    /// <summary>Held-out exchanges: prompts that never occur in training.</summary>
    public IReadOnlyList<TinyExample> HeldOut { get; }

    public IReadOnlyList<string> Families { get; }

    public static TinyCorpus Generate(TinyCorpusOptions options)
    {
        var random = new Random(options.Seed);
        var families = BuildFamilies();

        var heldOut = new List<TinyExample>();
        foreach (var family in families)
        {
            // A seeded pick of the held-out prompts keeps evaluation short and the same for a seed.
            var picked = family.HeldOut.OrderBy(_ => random.Next()).Take(options.HeldOutPerFamily)
                .OrderBy(e => e.Prompt, StringComparer.Ordinal);
            heldOut.AddRange(picked);
        }

        var totalWeight = families.Sum(f => f.Weight);
        var training = new List<TinyExample>(options.TrainingExamples);
        var turns = new List<(string?, TinyExample)>(options.TrainingExamples);
        for (var i = 0; i < options.TrainingExamples; i++)
        {
            var roll = random.NextDouble() * totalWeight;
            var family = families[^1];
            foreach (var candidate in families)
            {
                if (roll < candidate.Weight)
                {
                    family = candidate;
                    break;
                }
                roll -= candidate.Weight;
            }
            var example = family.Training[random.Next(family.Training.Count)];
            training.Add(example);
            turns.Add((random.NextDouble() < options.SystemPromptShare ? SystemPrompt : null, example));
        }

        return new TinyCorpus(training, heldOut, families.Select(f => f.Name).ToArray(), turns);
    }

    private sealed record Family(string Name, double Weight, List<TinyExample> Training, List<TinyExample> HeldOut);

    private static List<Family> BuildFamilies() =>
    [
        PhrasedFamily("capitals", 1.0, Capitals, CapitalPhrasings, (country, city) => (country, city)),
        PhrasedFamily("colours", 0.8, Colours, ColourPhrasings, (thing, colour) => (thing, colour)),
        PhrasedFamily("animal-sounds", 0.8, AnimalSounds, AnimalPhrasings, (animal, sound) => (WithArticle(animal), sound)),
        Arithmetic("addition", 2.0, AdditionPhrasings, (a, b) => a + b, (a, b) => true),
        Arithmetic("subtraction", 2.0, SubtractionPhrasings, (a, b) => a - b, (a, b) => a >= b),
        WordOperation("uppercase", 1.2, UppercasePhrasings, w => w.ToUpperInvariant()),
        WordOperation("first-letter", 1.0, FirstLetterPhrasings, w => w[..1]),
        WordOperation("last-letter", 1.0, LastLetterPhrasings, w => w[^1..]),
        WordOperation("letter-count", 1.0, LetterCountPhrasings, w => w.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        Greetings(),
        Conversation("identity", 0.8, IdentityQuestions),
        Conversation("about-llmtune", 0.8, LlmTuneQuestions),
    ];

    // Facts: every item is held out under exactly one phrasing (rotating with the item's index).
    private static Family PhrasedFamily(string name, double weight, (string Item, string Answer)[] items, string[] phrasings,
        Func<string, string, (string Subject, string Answer)> shape)
    {
        var training = new List<TinyExample>();
        var heldOut = new List<TinyExample>();
        for (var i = 0; i < items.Length; i++)
        {
            var (subject, answer) = shape(items[i].Item, items[i].Answer);
            for (var p = 0; p < phrasings.Length; p++)
            {
                var example = new TinyExample(name, Capitalise(string.Format(System.Globalization.CultureInfo.InvariantCulture, phrasings[p], subject)), answer);
                (p == i % phrasings.Length ? heldOut : training).Add(example);
            }
        }
        return new Family(name, weight, training, heldOut);
    }

    // Arithmetic on operands 0..MaxOperand: every pair is held out under one phrasing (rotating with the pair), so the
    // held-out prompts are unseen (pair, phrasing) combinations and every phrasing is still trained with other pairs.
    private static Family Arithmetic(string name, double weight, string[] phrasings, Func<int, int, int> compute, Func<int, int, bool> allowed)
    {
        var training = new List<TinyExample>();
        var heldOut = new List<TinyExample>();
        for (var a = 0; a <= MaxOperand; a++)
        {
            for (var b = 0; b <= MaxOperand; b++)
            {
                if (!allowed(a, b))
                {
                    continue;
                }
                var answer = compute(a, b).ToString(System.Globalization.CultureInfo.InvariantCulture);
                for (var p = 0; p < phrasings.Length; p++)
                {
                    var prompt = string.Format(System.Globalization.CultureInfo.InvariantCulture, phrasings[p], a, b);
                    (p == (3 * a + b) % phrasings.Length ? heldOut : training).Add(new TinyExample(name, prompt, answer));
                }
            }
        }
        return new Family(name, weight, training, heldOut);
    }

    // Word operations: each (word, operation) is held out under one phrasing; the word is seen under the others.
    private static Family WordOperation(string name, double weight, string[] phrasings, Func<string, string> operation)
    {
        var training = new List<TinyExample>();
        var heldOut = new List<TinyExample>();
        for (var i = 0; i < Words.Length; i++)
        {
            for (var p = 0; p < phrasings.Length; p++)
            {
                var example = new TinyExample(name, string.Format(System.Globalization.CultureInfo.InvariantCulture, phrasings[p], Words[i]), operation(Words[i]));
                (p == (i + name.Length) % phrasings.Length ? heldOut : training).Add(example);
            }
        }
        return new Family(name, weight, training, heldOut);
    }

    // Greetings: the answer greets back with the same words; one (casing, ending) variant per greeting is held out.
    private static Family Greetings()
    {
        var training = new List<TinyExample>();
        var heldOut = new List<TinyExample>();
        string[] endings = ["", "!", ".", "!!", " :)", ", friend!", ", how are you?"];
        for (var g = 0; g < GreetingWords.Length; g++)
        {
            var greeting = GreetingWords[g];
            var answer = greeting + "! How can I help you today?";
            var variants = new List<string>();
            foreach (var ending in endings)
            {
                variants.Add(greeting + ending);
                variants.Add(greeting.ToLowerInvariant() + ending);
            }
            for (var v = 0; v < variants.Count; v++)
            {
                var example = new TinyExample("greetings", variants[v], answer);
                (v % 5 == g % 5 ? heldOut : training).Add(example);
            }
        }
        return new Family("greetings", 0.8, training, heldOut);
    }

    // Questions with a fixed answer, asked with different openings; two openings per question are held out.
    private static Family Conversation(string name, double weight, (string[] Questions, string Answer)[] topics)
    {
        var training = new List<TinyExample>();
        var heldOut = new List<TinyExample>();
        var index = 0;
        foreach (var (questions, answer) in topics)
        {
            foreach (var question in questions)
            {
                for (var o = 0; o < Openings.Length; o++)
                {
                    var prompt = Openings[o].Length == 0 ? question : Openings[o] + LowerFirst(question);
                    var example = new TinyExample(name, prompt, answer);
                    (o == index % Openings.Length || o == (index + 3) % Openings.Length ? heldOut : training).Add(example);
                }
                index++;
            }
        }
        return new Family(name, weight, training, heldOut);
    }

    /// <summary>Largest operand of the arithmetic families (sums up to 40, differences never negative).</summary>
    public const int MaxOperand = 20;

    private static string Capitalise(string text) => text.Length == 0 ? text : char.ToUpperInvariant(text[0]) + text[1..];

    private static string LowerFirst(string text) =>
        text.StartsWith("LLMTune", StringComparison.Ordinal) || text.StartsWith("I ", StringComparison.Ordinal) ? text : char.ToLowerInvariant(text[0]) + text[1..];

    private static string WithArticle(string noun) => ("aeiou".Contains(noun[0]) ? "an " : "a ") + noun;

    private static readonly (string, string)[] Capitals =
    [
        ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Portugal", "Lisbon"),
        ("England", "London"), ("Ireland", "Dublin"), ("Norway", "Oslo"), ("Sweden", "Stockholm"), ("Finland", "Helsinki"),
        ("Denmark", "Copenhagen"), ("Poland", "Warsaw"), ("Austria", "Vienna"), ("Greece", "Athens"), ("Hungary", "Budapest"),
        ("Belgium", "Brussels"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"), ("Japan", "Tokyo"), ("China", "Beijing"),
        ("India", "New Delhi"), ("Russia", "Moscow"), ("Canada", "Ottawa"), ("Mexico", "Mexico City"), ("Peru", "Lima"),
        ("Chile", "Santiago"), ("Argentina", "Buenos Aires"), ("Cuba", "Havana"), ("Australia", "Canberra"), ("Thailand", "Bangkok"),
        ("Turkey", "Ankara"), ("Iran", "Tehran"), ("Iraq", "Baghdad"), ("Czechia", "Prague"), ("Romania", "Bucharest"),
        ("Ukraine", "Kyiv"), ("Vietnam", "Hanoi"), ("Morocco", "Rabat"), ("Nigeria", "Abuja"), ("Brazil", "Brasilia"),
    ];

    private static readonly string[] CapitalPhrasings =
    [
        "What is the capital of {0}?", "Name the capital of {0}.", "Which city is the capital of {0}?",
        "Tell me the capital of {0}.", "What city is the capital of {0}?", "The capital of {0} is which city?",
    ];

    private static readonly (string, string)[] Colours =
    [
        ("grass", "green"), ("the sky", "blue"), ("snow", "white"), ("coal", "black"), ("a banana", "yellow"),
        ("a tomato", "red"), ("a carrot", "orange"), ("milk", "white"), ("a lemon", "yellow"), ("a leaf", "green"),
        ("the sea", "blue"), ("a strawberry", "red"), ("chocolate", "brown"), ("a lime", "green"), ("a crow", "black"),
        ("a pumpkin", "orange"), ("an eggplant", "purple"), ("a flamingo", "pink"), ("the sun", "yellow"), ("ash", "grey"),
        ("a cherry", "red"), ("a frog", "green"), ("a swan", "white"), ("soil", "brown"), ("a plum", "purple"),
        ("blood", "red"), ("a raven", "black"), ("an elephant", "grey"), ("a polar bear", "white"), ("a blueberry", "blue"),
    ];

    private static readonly string[] ColourPhrasings =
    [
        "What colour is {0}?", "What color is {0}?", "Which colour is {0}?", "Tell me the colour of {0}.",
        "What is the colour of {0}?", "What color does {0} have?",
    ];

    private static readonly (string, string)[] AnimalSounds =
    [
        ("dog", "woof"), ("cat", "meow"), ("cow", "moo"), ("sheep", "baa"), ("duck", "quack"), ("pig", "oink"),
        ("horse", "neigh"), ("lion", "roar"), ("owl", "hoot"), ("frog", "croak"), ("snake", "hiss"), ("bee", "buzz"),
        ("mouse", "squeak"), ("hen", "cluck"), ("donkey", "bray"), ("wolf", "howl"), ("crow", "caw"), ("dove", "coo"),
        ("turkey", "gobble"), ("elephant", "trumpet"), ("goat", "bleat"), ("rooster", "cock-a-doodle-doo"),
    ];

    private static readonly string[] AnimalPhrasings =
    [
        "What sound does {0} make?", "What does {0} say?", "Which sound does {0} make?", "What noise does {0} make?",
        "How does {0} sound?", "Tell me the sound of {0}.",
    ];

    private static readonly string[] AdditionPhrasings =
    [
        "What is {0} plus {1}?", "What is {0} + {1}?", "{0} + {1} =", "Add {0} and {1}.", "Compute {0} + {1}.",
        "How much is {0} plus {1}?",
    ];

    private static readonly string[] SubtractionPhrasings =
    [
        "What is {0} minus {1}?", "What is {0} - {1}?", "{0} - {1} =", "Subtract {1} from {0}.", "Compute {0} - {1}.",
        "How much is {0} minus {1}?",
    ];

    private static readonly string[] Words =
    [
        "cat", "dog", "sun", "moon", "tree", "book", "fish", "bird", "milk", "rain", "star", "lamp", "door", "road",
        "ship", "ball", "cake", "frog", "king", "song", "apple", "house", "water", "river", "green", "music", "light",
        "table", "chair", "bread", "cloud", "stone", "plant", "horse", "mouse", "night", "train", "paper", "smile",
        "sugar", "pen", "cup", "hat", "box", "bed", "car", "egg", "key", "map", "bus", "leaf", "snow", "wind", "fire",
        "gold", "ring", "bell", "coat", "shoe", "sock", "garden", "yellow", "purple", "orange", "window", "summer",
        "winter", "planet", "rocket", "silver", "basket", "pencil", "button", "dragon", "forest", "castle", "island",
        "jungle", "bridge", "candle", "tiger", "zebra", "lemon", "grape", "piano", "ocean", "field", "heart", "queen",
        "tiny", "code", "data", "model", "token", "quick", "happy", "brave", "calm", "wild",
    ];

    private static readonly string[] UppercasePhrasings =
    [
        "Write {0} in capital letters.", "Uppercase: {0}", "What is {0} in uppercase?", "Make {0} uppercase.",
        "Convert {0} to upper case.", "Write the word {0} in uppercase.",
    ];

    private static readonly string[] FirstLetterPhrasings =
    [
        "What is the first letter of {0}?", "First letter of {0}?", "Which letter does {0} start with?",
        "What letter does the word {0} begin with?", "Give the first letter of {0}.", "The word {0} starts with which letter?",
    ];

    private static readonly string[] LastLetterPhrasings =
    [
        "What is the last letter of {0}?", "Last letter of {0}?", "Which letter does {0} end with?",
        "What letter does the word {0} end with?", "Give the last letter of {0}.", "The word {0} ends with which letter?",
    ];

    private static readonly string[] LetterCountPhrasings =
    [
        "How many letters are in {0}?", "Count the letters in {0}.", "How many letters does {0} have?",
        "How long is the word {0}?", "Number of letters in {0}?", "How many letters does the word {0} have?",
    ];

    private static readonly string[] GreetingWords =
    [
        "Hello", "Hi", "Hey", "Good morning", "Good afternoon", "Good evening", "Hi there", "Hello there", "Hey there",
        "Greetings", "Howdy", "Good day",
    ];

    private static readonly string[] Openings = ["", "Hi, ", "Hello, ", "Hey, ", "Excuse me, ", "Quick question: ", "Please tell me: "];

    private static readonly (string[], string)[] IdentityQuestions =
    [
        (["Who are you?", "What is your name?", "What are you?", "What should I call you?", "Tell me your name."],
            "I am LLMTune Tiny, a small language model."),
        (["Who made you?", "Who built you?", "Who created you?", "Who trained you?"],
            "I was built and trained by the LLMTune project."),
        (["Are you a human?", "Are you a person?", "Are you alive?"],
            "No, I am a small language model."),
        (["How big are you?", "How many parameters do you have?", "How large are you?"],
            "I have about two million parameters."),
        (["What can you do?", "What are you good at?", "How can you help me?"],
            "I can answer small questions, do simple sums and play with words."),
    ];

    private static readonly (string[], string)[] LlmTuneQuestions =
    [
        (["What is LLMTune?", "What does LLMTune do?", "Can you describe LLMTune?"],
            "LLMTune is a self-hostable platform for LLM inference and fine-tuning."),
        (["What language is LLMTune written in?", "Which language is LLMTune built with?", "What is LLMTune written in?"],
            "LLMTune is written in C# on .NET."),
        (["How do I fine-tune a model with LLMTune?", "How can I fine-tune a model on LLMTune?", "How do I train a model with LLMTune?"],
            "Create a fine-tuning job through the LLMTune API."),
        (["Which models does LLMTune serve?", "What models can LLMTune run?", "What models does LLMTune support?"],
            "LLMTune runs GGUF models with llama.cpp."),
        (["Can I run LLMTune on my laptop?", "Does LLMTune run on one machine?", "Can LLMTune run as one process?"],
            "Yes, LLMTune runs as a single process on a laptop."),
        (["What licence do your weights have?", "What is the licence of your weights?", "Under which licence are your weights?"],
            "My weights are released under Apache-2.0."),
    ];
}

using System.Runtime.InteropServices;
using System.Text;
using LLama.Native;
using LLMTune.Engine.Native;

namespace LLMTune.Engine.Inference;

public sealed partial class LoadedModel
{
    private static readonly Lazy<GrammarParser> Parser = new(GrammarParser.Load);

    /// <summary>The model's own chat template (<c>tokenizer.chat_template</c>), or null when it has none.</summary>
    public string? ChatTemplate => _chatTemplate;

    /// <summary>
    /// Parses the request's grammar once on the caller's thread. LLamaSharp adds whatever llama.cpp returns to the
    /// sampler chain, and for a grammar llama.cpp rejects that is a null sampler that crashes the process when used;
    /// so the grammar is tried with llama.cpp's own parser first, and a rejected one never reaches the decode thread.
    /// </summary>
    private void CheckGrammar(GenerationRequest request)
    {
        if (request.Grammar is { } grammar && !Parser.Value.Parses(_weights.NativeHandle, grammar))
        {
            throw new ArgumentException("llama.cpp could not parse the grammar.", nameof(request));
        }
    }

    /// <summary>First in the chain, so temperature and top-p only ever see tokens the grammar allows.</summary>
    private void AddGrammar(SafeLLamaSamplerChainHandle chain, GenerationRequest request)
    {
        if (request.Grammar is { } grammar)
        {
            chain.AddGrammar(_weights.Vocab, grammar, "root");
        }
    }

    /// <summary>llama.cpp's grammar sampler constructor, called directly so a parse failure is seen as the null it returns.</summary>
    private sealed unsafe class GrammarParser
    {
        private readonly delegate* unmanaged[Cdecl]<nint, nint> _getVocab;
        private readonly delegate* unmanaged[Cdecl]<nint, byte*, byte*, nint> _initGrammar;
        private readonly delegate* unmanaged[Cdecl]<nint, void> _free;

        private GrammarParser(nint library)
        {
            _getVocab = (delegate* unmanaged[Cdecl]<nint, nint>)NativeLibrary.GetExport(library, "llama_model_get_vocab");
            _initGrammar = (delegate* unmanaged[Cdecl]<nint, byte*, byte*, nint>)NativeLibrary.GetExport(library, "llama_sampler_init_grammar");
            _free = (delegate* unmanaged[Cdecl]<nint, void>)NativeLibrary.GetExport(library, "llama_sampler_free");
        }

        /// <summary>The libllama LLamaSharp loaded (beside the ggml libraries), so there is one copy in the process.</summary>
        public static GrammarParser Load()
        {
            var file = OperatingSystem.IsWindows() ? "llama.dll" : OperatingSystem.IsMacOS() ? "libllama.dylib" : "libllama.so";
            return new GrammarParser(NativeLibrary.Load(Path.Combine(NativeLibraryResolver.NativeDirectory, file)));
        }

        public bool Parses(SafeLlamaModelHandle model, string grammar)
        {
            var added = false;
            model.DangerousAddRef(ref added);
            try
            {
                var vocab = _getVocab(model.DangerousGetHandle());
                var text = Encoding.UTF8.GetBytes(grammar + "\0");
                var root = "root\0"u8;
                nint sampler;
                fixed (byte* textPointer = text)
                fixed (byte* rootPointer = root)
                {
                    sampler = _initGrammar(vocab, textPointer, rootPointer);
                }

                if (sampler == nint.Zero)
                {
                    return false;
                }

                _free(sampler);
                return true;
            }
            finally
            {
                if (added)
                {
                    model.DangerousRelease();
                }
            }
        }
    }
}

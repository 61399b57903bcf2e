using System.Collections.Concurrent;
using MassTransit;

namespace LLMTune.Testing;

/// <summary>Every message a host's bus publishes, in order, recorded for assertions (connect as a publish observer).</summary>
public sealed class PublishedEvents : IPublishObserver
{
    private readonly ConcurrentQueue<object> _messages = new();

    public IReadOnlyList<object> All => _messages.ToList();

    public IReadOnlyList<T> Of<T>() where T : class => _messages.OfType<T>().ToList();

    public Task PrePublish<T>(PublishContext<T> context) where T : class => Task.CompletedTask;

    public Task PostPublish<T>(PublishContext<T> context) where T : class
    {
        _messages.Enqueue(context.Message);
        return Task.CompletedTask;
    }

    public Task PublishFault<T>(PublishContext<T> context, Exception exception) where T : class => Task.CompletedTask;
}

/// <summary>Every message a host's consumers finished handling, successfully or not (connect as a consume observer).</summary>
public sealed class ConsumedMessages : IConsumeObserver
{
    private readonly ConcurrentQueue<object> _messages = new();

    public IReadOnlyList<T> Of<T>() where T : class => _messages.OfType<T>().ToList();

    public Task PreConsume<T>(ConsumeContext<T> context) where T : class => Task.CompletedTask;

    public Task PostConsume<T>(ConsumeContext<T> context) where T : class
    {
        _messages.Enqueue(context.Message);
        return Task.CompletedTask;
    }

    public Task ConsumeFault<T>(ConsumeContext<T> context, Exception exception) where T : class
    {
        _messages.Enqueue(context.Message);
        return Task.CompletedTask;
    }
}

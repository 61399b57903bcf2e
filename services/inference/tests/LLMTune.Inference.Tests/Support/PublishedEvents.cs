using System.Collections.Concurrent;
using MassTransit;

namespace LLMTune.Inference.Tests.Support;

/// <summary>Every message the host's bus publishes, recorded for assertions (connected as a publish observer).</summary>
public sealed class PublishedEvents : IPublishObserver
{
    private readonly ConcurrentQueue<object> _messages = new();

    public IReadOnlyList<T> Of<T>() where T : class => _messages.OfType<T>().ToList();

    public Task PrePublish<T>(PublishContext<T> context) where T : class => Task.CompletedTask;

    public Task PostPublish<T>(PublishContext<T> context) where T : class
    {
        _messages.Enqueue(context.Message);
        return Task.CompletedTask;
    }

    public Task PublishFault<T>(PublishContext<T> context, Exception exception) where T : class => Task.CompletedTask;
}

/// <summary>Every message the host's consumers finished handling (successfully or not).</summary>
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

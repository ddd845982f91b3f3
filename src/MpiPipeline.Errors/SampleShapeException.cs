namespace MpiPipeline;

/// <summary>
/// Bad input of one kind: the data's samples have a shape the model cannot take (a convolution given flat vectors,
/// images too small for its poolings). The model knows the shape but not where the samples came from; the training
/// loop adds the data set's files, so the message names both.
/// </summary>
public sealed class SampleShapeException(string message) : InputException(message);

using LoraLego.Core.Adapters;

namespace LoraLego.Core.Tests.Adapters;

public class BaseModelAgreementTests
{
    [Fact]
    public void Adapters_naming_one_base_model_or_none_agree()
    {
        Assert.Null(BaseModelAgreement.Disagreement([("a", "meta/llama"), ("b", "meta/llama"), ("c", null), ("d", "")]));
        Assert.Null(BaseModelAgreement.Disagreement([]));
    }

    [Fact]
    public void Different_base_models_are_listed_with_the_adapters_that_name_them()
    {
        string? message = BaseModelAgreement.Disagreement([("a", "meta/llama"), ("b", "mistral/7b"), ("a", "meta/llama"), ("c", "meta/llama")]);
        Assert.Equal("the adapters name 2 different base models (a, c: meta/llama; b: mistral/7b); what is built from them fits at most one", message);
    }

    [Fact]
    public void Names_are_compared_exactly()
    {
        Assert.NotNull(BaseModelAgreement.Disagreement([("a", "../base"), ("b", "../../base")]));
        Assert.NotNull(BaseModelAgreement.Disagreement([("a", "Meta/Llama"), ("b", "meta/llama")]));
    }
}

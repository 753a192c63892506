# The bad-input corpus beyond damaged files (Import-Lora.Tests.ps1 has those): non-finite weights,
# config fields of the wrong type, write failures, filters that match nothing, argument counts,
# wrong pipeline input, mixture manifests, evaluation data, and handles left on input files.
# Every case checks the error's category, its id and that the message names the file, module or
# parameter it is about. See docs/reliability.md for the policy.
BeforeDiscovery {
    $configCases = @(
        @{ Field = 'lora_alpha'; Json = '"16"'; Says = "field 'lora_alpha' is the string `"16`"" }
        @{ Field = 'lora_alpha'; Json = 'null'; Says = "field 'lora_alpha' is null" }
        @{ Field = 'lora_alpha'; Json = 'true'; Says = "field 'lora_alpha' is the boolean true" }
        @{ Field = 'lora_alpha'; Json = '[16]'; Says = "field 'lora_alpha' is a list" }
        @{ Field = 'lora_alpha'; Json = '1e999'; Says = "field 'lora_alpha' is 1e999" }
        @{ Field = 'r'; Json = '"2"'; Says = "field 'r' is the string `"2`"" }
        @{ Field = 'r'; Json = '2.5'; Says = "field 'r' is 2.5, but PEFT needs a positive integer" }
        @{ Field = 'r'; Json = '0'; Says = "field 'r' is 0" }
        @{ Field = 'r'; Json = '-2'; Says = "field 'r' is -2" }
        @{ Field = 'r'; Json = 'null'; Says = "field 'r' is null" }
        @{ Field = 'r'; Json = '1e12'; Says = "field 'r' is 1e12" }
        @{ Field = 'r'; Json = '{"value": 2}'; Says = "field 'r' is an object" }
        @{ Field = 'use_rslora'; Json = '"true"'; Says = "field 'use_rslora' is the string `"true`"" }
        @{ Field = 'use_rslora'; Json = '2'; Says = "field 'use_rslora' is 2, but PEFT needs true or false" }
        @{ Field = 'use_dora'; Json = '"false"'; Says = "field 'use_dora' is the string `"false`"" }
        @{ Field = 'fan_in_fan_out'; Json = '"yes"'; Says = "field 'fan_in_fan_out' is the string `"yes`"" }
        @{ Field = 'peft_type'; Json = '1'; Says = "field 'peft_type' is 1, but PEFT needs a string" }
        @{ Field = 'base_model_name_or_path'; Json = '42'; Says = "field 'base_model_name_or_path' is 42" }
        @{ Field = 'target_modules'; Json = '7'; Says = "field 'target_modules' is 7" }
        @{ Field = 'target_modules'; Json = '["q_proj", 3]'; Says = "field 'target_modules[1]' is 3" }
        @{ Field = 'rank_pattern'; Json = '[]'; Says = "field 'rank_pattern' is a list" }
        @{ Field = 'rank_pattern'; Json = '{"q_proj": "2"}'; Says = "field 'rank_pattern.q_proj' is the string `"2`"" }
        @{ Field = 'rank_pattern'; Json = '{"q_proj": 1.5}'; Says = "field 'rank_pattern.q_proj' is 1.5" }
        @{ Field = 'alpha_pattern'; Json = '{"q_proj": "x"}'; Says = "field 'alpha_pattern.q_proj' is the string `"x`"" }
        @{ Field = 'alpha_pattern'; Json = '"q_proj=4"'; Says = "field 'alpha_pattern' is the string `"q_proj=4`"" }
    )
    $nonFiniteMerges = @(
        @{ Arguments = @{ Method = 'Lego' } }
        @{ Arguments = @{ Method = 'Lego'; Rank = 4 } }
        @{ Arguments = @{ Method = 'Cat' } }
        @{ Arguments = @{ Method = 'Linear' } }
        @{ Arguments = @{ Method = 'Svd' } }
        @{ Arguments = @{ Method = 'Ties'; Density = 0.5 } }
        @{ Arguments = @{ Method = 'TiesSvd'; Density = 0.5 } }
        @{ Arguments = @{ Method = 'DareLinear'; Density = 0.5; Seed = 1 } }
        @{ Arguments = @{ Method = 'MagnitudePruneSvd'; Density = 0.5 } }
    )
    $poisons = @(
        @{ Poison = 'NaN'; Value = [float]::NaN; Factor = 'lora_A' }
        @{ Poison = '+Inf'; Value = [float]::PositiveInfinity; Factor = 'lora_B' }
        @{ Poison = '-Inf'; Value = [float]::NegativeInfinity; Factor = 'lora_A' }
    )
    $wrongInputs = @(
        @{ Command = 'Merge-Lora'; InputText = "'adapters/a'"; Says = "not 'adapters/a' (a string" }
        @{ Command = 'Merge-Lora'; InputText = '42'; Says = "not '42'" }
        @{ Command = 'Merge-Lora'; InputText = '@{ Name = "a" }'; Says = "not 'System.Collections.Hashtable'" }
        @{ Command = 'Merge-Lora'; InputText = '$model'; Says = 'Mount-Lora' }
        @{ Command = 'Merge-Lora'; InputText = 'Get-Item $Adapters'; Says = 'Import-Lora' }
        @{ Command = 'Merge-Lora -Method Cat'; InputText = "'a', 'b'"; Says = "not 'a'" }
        @{ Command = 'Export-Lora TestDrive:/wrong'; InputText = "'adapters/a'"; Says = "not 'adapters/a'" }
        @{ Command = 'Export-Lora TestDrive:/wrong'; InputText = '$model'; Says = 'Mount-Lora' }
        @{ Command = 'Export-Lora TestDrive:/wrong'; InputText = '(Import-Lora "$Adapters/a", "$Adapters/b" | New-LoraMixture)'; Says = 'Export-LoraMixture' }
        @{ Command = 'Export-Lora TestDrive:/wrong'; InputText = '(Import-Lora "$Adapters/c" | Split-Msu | Select-Object -First 1)'; Says = 'takes a LoraAdapter' }
    )
    $manifestCases = @(
        @{ Case = 'experts holds null'; Edit = { param($m) $m['experts'].Add($null) }; Says = 'not a valid mixture manifest' }
        @{ Case = 'gates holds null'; Edit = { param($m) $m['gates'].Add($null) }; Says = 'not a valid mixture manifest' }
        @{ Case = 'format is a number'; Edit = { param($m) $m['format'] = 3 }; Says = 'not a valid mixture manifest' }
        @{ Case = 'version 2'; Edit = { param($m) $m['version'] = 2 }; Says = 'mixture format version 2' }
        @{ Case = 'temperature is a string'; Edit = { param($m) $m['temperature'] = '1' }; Says = 'not a valid mixture manifest' }
        @{ Case = 'granularity unknown'; Edit = { param($m) $m['granularity'] = 'Token' }; Says = "granularity 'Token' is not one of" }
        @{ Case = 'experts is an object'; Edit = { param($m) $m['experts'] = @{ a = 1 } }; Says = 'not a valid mixture manifest' }
        @{ Case = 'an expert folder is missing'; Edit = { param($m) $m['experts'][0]['folder'] = 'experts/none' }; Says = 'no such file or folder' }
        @{ Case = 'an expert folder leaves the mixture'; Edit = { param($m) $m['experts'][0]['folder'] = '../../outside' }; Says = 'outside the mixture folder' }
    )
}

BeforeAll {
    . $PSScriptRoot/Common.ps1
    $model = Import-BaseModel "$Tiny/base" -Device Cpu
    $Valid = Join-Path $Fixtures 'malformed/valid'

    # A copy of a fixture adapter in TestDrive, returned as a full path.
    function Copy-TestAdapter([string] $From, [string] $Name) {
        $to = Join-Path $TestDrive $Name
        Remove-Item -LiteralPath $to -Recurse -Force -ErrorAction Ignore
        $null = New-Item -ItemType Directory $to
        Copy-Item (Join-Path $From '*') $to
        $to
    }

    # Sets element 0 of the first tensor whose name contains $Factor (F32) in a copy of $From.
    function New-PoisonedAdapter([string] $From, [string] $Name, [float] $Value, [string] $Factor = 'lora_A') {
        $folder = Copy-TestAdapter $From $Name
        $file = Join-Path $folder 'adapter_model.safetensors'
        $bytes = [IO.File]::ReadAllBytes($file)
        $n = [BitConverter]::ToUInt64($bytes, 0)
        $header = [Text.Encoding]::UTF8.GetString($bytes, 8, $n) | ConvertFrom-Json -AsHashtable
        $key = $header.Keys | Where-Object { $_ -like "*$Factor*" } | Sort-Object | Select-Object -First 1
        $offset = 8 + $n + $header[$key].data_offsets[0]
        [BitConverter]::GetBytes($Value).CopyTo($bytes, $offset)
        [IO.File]::WriteAllBytes($file, $bytes)
        [pscustomobject]@{ Path = $folder; File = $file; Tensor = $key }
    }

    # A copy of the valid malformed-corpus adapter with one config field set to raw JSON.
    function New-ConfigVariant([string] $Field, [string] $Json, [string] $Name = 'config') {
        $folder = Copy-TestAdapter $Valid $Name
        $file = Join-Path $folder 'adapter_config.json'
        $config = [Text.Json.Nodes.JsonNode]::Parse((Get-Content -Raw $file))
        $config[$Field] = [Text.Json.Nodes.JsonNode]::Parse($Json)
        Set-Content -LiteralPath $file -Value $config.ToJsonString() -NoNewline
        $folder
    }

    # Runs a script block and returns its errors (non-terminating and terminating alike) and output.
    function Invoke-Capture([scriptblock] $Script) {
        $errors = [System.Collections.Generic.List[System.Management.Automation.ErrorRecord]]::new()
        $output = try { & $Script 2>&1 | ForEach-Object { if ($_ -is [System.Management.Automation.ErrorRecord]) { $errors.Add($_) } else { $_ } } } catch { $errors.Add($_) }
        [pscustomobject]@{ Errors = $errors; Output = $output }
    }

    # One error of the module's own shape: category, id, and every phrase in the message.
    function Assert-LoraError($Captured, [string] $Category, [string] $Id, [string[]] $Says) {
        $Captured.Errors.Count | Should -BeGreaterThan 0 -Because 'the mistake must be refused'
        $e = $Captured.Errors[0]
        $e.CategoryInfo.Category | Should -Be $Category
        $e.FullyQualifiedErrorId | Should -BeLike "LoraLego.$Id,LoraLego.Commands.*"
        $e.Exception | Should -BeOfType LoraLego.Core.LoraException
        foreach ($s in $Says) { $e.Exception.Message | Should -BeLike "*$([WildcardPattern]::Escape($s))*" }
        $e.Exception.Message | Should -Not -Match '(?m)^\s+at |frame #\d|Exception raised from'
    }
}

Describe 'Non-finite weights' {
    It '<Poison> in <Factor>: Import-Lora reads the header, Export-Lora refuses the weights by file and tensor' -ForEach $poisons {
        $bad = New-PoisonedAdapter $Valid "poison-$Poison" $Value $Factor
        $adapter = Import-Lora $bad.Path
        $adapter.ModuleCount | Should -Be 1
        $target = Join-Path $TestDrive "poison-out-$Poison"
        $run = Invoke-Capture { $adapter | Export-Lora $target -ErrorAction Stop }
        Assert-LoraError $run InvalidData NonFiniteWeights $bad.File, $bad.Tensor, "the first, $Poison,", '1 non-finite value'
        $target | Should -Not -Exist
    }

    It 'Merge-Lora <Arguments.Method> (<Arguments.Keys>) refuses an adapter with an Inf, naming it' -ForEach $nonFiniteMerges {
        $bad = New-PoisonedAdapter "$Adapters/b" 'b-inf' ([float]::PositiveInfinity)
        $run = Invoke-Capture { Import-Lora "$Adapters/a", $bad.Path | Merge-Lora @Arguments -ErrorAction Stop }
        Assert-LoraError $run InvalidData NonFiniteWeights $bad.File, $bad.Tensor
        $run.Output | Should -BeNullOrEmpty
    }

    It 'Split-Msu refuses a NaN, naming the file' {
        $bad = New-PoisonedAdapter "$Adapters/c" 'c-nan' ([float]::NaN)
        Assert-LoraError (Invoke-Capture { Import-Lora $bad.Path | Split-Msu -ErrorAction Stop }) InvalidData NonFiniteWeights $bad.File, 'NaN'
    }

    It 'Mount-Lora refuses a NaN adapter and leaves the model as it was' {
        $bad = New-PoisonedAdapter "$Adapters/c" 'c-nan-mount' ([float]::NaN)
        $run = Invoke-Capture { Import-Lora $bad.Path | Mount-Lora -Model $model -ErrorAction Stop }
        Assert-LoraError $run InvalidData NonFiniteWeights $bad.File
        $model.Adapters | Should -BeNullOrEmpty
    }

    It 'New-LoraMixture takes the adapter (headers only); Export-LoraMixture refuses it, writing nothing' {
        $bad = New-PoisonedAdapter "$Adapters/b" 'b-nan-mix' ([float]::NaN)
        $mixture = Import-Lora "$Adapters/a", $bad.Path | New-LoraMixture -Name poisoned
        $run = Invoke-Capture { $mixture | Export-LoraMixture TestDrive:/poisoned-mixture -ErrorAction Stop }
        Assert-LoraError $run InvalidData NonFiniteWeights $bad.File
        'TestDrive:/poisoned-mixture' | Should -Not -Exist
    }

    It 'Export-Lora -DType Float16 refuses a value past float16''s range, naming the folder and the tensor' {
        $big = New-PoisonedAdapter $Valid 'big' 1e6
        $target = Join-Path $TestDrive 'big-f16'
        $run = Invoke-Capture { Import-Lora $big.Path | Export-Lora $target -DType Float16 -ErrorAction Stop }
        Assert-LoraError $run InvalidData NonFiniteWeights $target, $big.Tensor, 'once converted to F16'
        $target | Should -Not -Exist
        Get-ChildItem $TestDrive -Force -Filter '.ll-*' | Should -BeNullOrEmpty
    }
}

Describe 'Config fields of the wrong JSON type' {
    It '"<Field>": <Json> is refused, naming the field and the file' -ForEach $configCases {
        $folder = New-ConfigVariant $Field $Json
        $run = Invoke-Capture { Import-Lora $folder -ErrorAction Stop }
        Assert-LoraError $run InvalidData ConfigFieldType (Join-Path $folder 'adapter_config.json'), $Says
        $run.Output | Should -BeNullOrEmpty
    }

    It 'reads "<Field>": <Json> as PEFT does, with a warning naming the field' -ForEach @(
        @{ Field = 'use_rslora'; Json = '1'; Property = 'UseRsLora'; Expected = $true }
        @{ Field = 'use_rslora'; Json = '0'; Property = 'UseRsLora'; Expected = $false }
        @{ Field = 'fan_in_fan_out'; Json = '0'; Property = $null; Expected = $null }
    ) {
        $folder = New-ConfigVariant $Field $Json
        $adapter = Import-Lora $folder -WarningVariable warnings -WarningAction SilentlyContinue
        $warnings.Count | Should -Be 1
        "$($warnings[0])" | Should -BeLike "*adapter_config.json: field '$Field' is the number $Json, read as *"
        if ($Property) { $adapter.$Property | Should -Be $Expected }
    }

    It 'takes null where PEFT takes None (flags, base model, patterns, target_modules)' {
        $folder = Copy-TestAdapter $Valid 'nulls'
        $file = Join-Path $folder 'adapter_config.json'
        $config = Get-Content -Raw $file | ConvertFrom-Json -AsHashtable
        foreach ($f in 'use_rslora', 'use_dora', 'fan_in_fan_out', 'base_model_name_or_path', 'rank_pattern', 'alpha_pattern', 'target_modules') { $config[$f] = $null }
        $config | ConvertTo-Json | Set-Content $file
        $adapter = Import-Lora $folder
        $adapter.Rank | Should -Be 2
        $adapter.UseRsLora | Should -BeFalse
    }

    It 'keeps 8.0 as the rank 8 (a whole number written as a float)' {
        $folder = New-ConfigVariant 'r' '2.0'
        (Import-Lora $folder).Rank | Should -Be 2
    }

    It 'refuses a key written twice, naming the file' {
        $folder = Copy-TestAdapter $Valid 'twice'
        $file = Join-Path $folder 'adapter_config.json'
        (Get-Content -Raw $file).Replace('"r": 2,', '"r": 2, "r": 4,') | Set-Content $file
        Assert-LoraError (Invoke-Capture { Import-Lora $folder -ErrorAction Stop }) InvalidData InvalidData $file, 'written twice'
    }
}

Describe 'Export write failures' {
    It 'refuses <Case> before writing, naming the path given' -ForEach @(
        @{ Case = 'a file where a folder should be'; Path = 'TestDrive:/a-file/sub'; Category = 'InvalidArgument'; Id = 'PathIsFile'; Says = 'is a file, so no folder can be created under it' }
        @{ Case = 'a name of 300 characters'; Path = "TestDrive:/$('n' * 300)"; Category = 'InvalidArgument'; Id = 'PathTooLong'; Says = 'is 300 bytes long' }
        @{ Case = 'a name of 200 two-byte characters'; Path = "TestDrive:/$([string][char]0xe9 * 200)"; Category = 'InvalidArgument'; Id = 'PathTooLong'; Says = 'is 400 bytes long' }
        @{ Case = 'the folder is a file'; Path = 'TestDrive:/a-file'; Category = 'ResourceExists'; Id = 'AlreadyExists'; Says = 'is a file' }
        @{ Case = 'a path of another provider'; Path = 'Env:/LORA'; Category = 'InvalidArgument'; Id = 'NotAFileSystemPath'; Says = 'Env:/LORA' }
    ) {
        Set-Content TestDrive:/a-file 'in the way'
        $full = if ($Path -like 'TestDrive:*') { $Path.Replace('TestDrive:', $TestDrive) } else { $Path }
        $run = Invoke-Capture { Import-Lora "$Adapters/c" | Export-Lora $Path -ErrorAction Stop }
        Assert-LoraError $run $Category $Id $full, $Says
        Get-ChildItem $TestDrive -Force -Filter '.ll-*' | Should -BeNullOrEmpty
    }

    It 'reports a special file system (<Path>) as <Category>, naming the path given and no temporary name' -Skip:(-not $IsLinux) -ForEach @(
        @{ Path = '/sys/loralego-export'; Category = 'PermissionDenied'; Id = 'PermissionDenied' }
        @{ Path = '/proc/loralego-export'; Category = 'WriteError'; Id = 'WriteFailed' }
    ) {
        foreach ($command in { Import-Lora "$Adapters/c" | Export-Lora $Path -ErrorAction Stop }, { Import-Lora "$Adapters/a", "$Adapters/b" | New-LoraMixture | Export-LoraMixture $Path -ErrorAction Stop }) {
            $run = Invoke-Capture $command
            Assert-LoraError $run $Category $Id $Path
            $run.Errors[0].Exception.Message | Should -Not -BeLike '*.tmp*'
        }
    }

    It 'reports a read-only folder as PermissionDenied (not as root, whom file modes do not stop)' -Skip:($IsWindows -or (id -u) -eq '0') {
        $null = New-Item -ItemType Directory TestDrive:/read-only
        chmod 555 (Join-Path $TestDrive read-only)
        try {
            $target = Join-Path $TestDrive 'read-only/out'
            Assert-LoraError (Invoke-Capture { Import-Lora "$Adapters/c" | Export-Lora $target -ErrorAction Stop }) PermissionDenied PermissionDenied $target
        }
        finally { chmod 755 (Join-Path $TestDrive read-only) }
    }

    It 'writes a folder whose name has 230 characters (the temporary name is short)' {
        $name = 'l' * 230
        Import-Lora "$Adapters/c" | Export-Lora "TestDrive:/$name"
        (Import-Lora "TestDrive:/$name").Rank | Should -Be 4
        Import-Lora "$Adapters/a", "$Adapters/b" | New-LoraMixture | Export-LoraMixture "TestDrive:/m$('l' * 229)"
        (Import-LoraMixture "TestDrive:/m$('l' * 229)").Experts.Count | Should -Be 2
    }
}

Describe 'Filters that match nothing and adapters without modules' {
    It '<Command> -Module refuses a pattern that matches no module, naming -Module' -ForEach @(
        @{ Command = 'Merge-Lora -Module "*nothing*"' }
        @{ Command = 'Merge-Lora -Rank 4 -Module "*nothing*"' }
        @{ Command = 'Split-Msu -Module "*nothing*"' }
    ) {
        $run = Invoke-Capture ([scriptblock]::Create("Import-Lora '$Adapters/a', '$Adapters/b' | $Command -ErrorAction Stop"))
        Assert-LoraError $run InvalidArgument NoModuleMatches '-Module', '*nothing*', 'matches none of the modules of a, b'
    }

    It 'Export-Lora refuses an adapter without modules before writing anything<Switch>' -ForEach @(@{ Switch = '' }, @{ Switch = ' (with -PassThru)' }) {
        $empty = [LoraLego.Core.Adapters.LoraAdapter]::Create('empty', [LoraLego.Core.Adapters.AdapterConfig]::Bare(), [LoraLego.Core.Adapters.LoraModule[]]@())
        $target = Join-Path $TestDrive "empty$($Switch.Length)"
        $run = Invoke-Capture { $empty | Export-Lora $target -PassThru:($Switch -ne '') -ErrorAction Stop }
        Assert-LoraError $run InvalidArgument EmptyAdapter $target, "adapter 'empty' has no modules"
        $target | Should -Not -Exist
        $run.Output | Should -BeNullOrEmpty
    }
}

Describe 'Argument mistakes' {
    It 'Mount-Lora refuses <Count> -Weight values for 2 adapters, attaching nothing' -ForEach @(@{ Count = 3 }, @{ Count = 1 }) {
        $run = Invoke-Capture { Import-Lora "$Adapters/a", "$Adapters/b" | Mount-Lora -Model $model -Weight (@(0.5) * $Count) -ErrorAction Stop }
        Assert-LoraError $run InvalidArgument WeightCount '-Weight', "has $Count values for 2 adapters (a, b)"
        $model.Adapters | Should -BeNullOrEmpty
    }

    It 'Split-Msu refuses a -Weight count that differs from the adapters''' {
        Assert-LoraError (Invoke-Capture { Import-Lora "$Adapters/a", "$Adapters/b" | Split-Msu -Weight 1, 2, 3 -ErrorAction Stop }) InvalidArgument InvalidArgument '-Weight has 3 values for 2 adapters'
    }

    It 'Merge-Lora -Rank larger than the unit count warns, as Invoke-RankCluster -K does' {
        $merged = Import-Lora "$Adapters/a", "$Adapters/b" | Merge-Lora -Rank 1000 -WarningVariable warnings -WarningAction SilentlyContinue
        "$warnings" | Should -BeLike '*-Rank 1000 is more than the 16 units of every module*'
        $merged.Rank | Should -Be 16
        $null = Import-Lora "$Adapters/a", "$Adapters/b" | Merge-Lora -WarningVariable none -WarningAction SilentlyContinue
        $none | Should -BeNullOrEmpty
        $null = Import-Lora "$Adapters/a", "$Adapters/b" | Split-Msu | Invoke-RankCluster -K 1000 -WarningVariable clusterWarnings -WarningAction SilentlyContinue
        "$clusterWarnings" | Should -BeLike '*fewer than k = 1000*'
    }

    It 'Merge-Lora warns when the adapters have no module in common' {
        $attention = Import-Lora "$Adapters/a" | Split-Msu -Module '*self_attn*' | Join-Msu -Name attention
        $mlp = Import-Lora "$Adapters/b" | Split-Msu -Module '*mlp*' | Join-Msu -Name mlp
        $merged = $attention, $mlp | Merge-Lora -Method Cat -WarningVariable warnings -WarningAction SilentlyContinue
        "$warnings" | Should -BeLike '*attention, mlp have no module in common*'
        $merged.ModuleCount | Should -Be ($attention.ModuleCount + $mlp.ModuleCount)
    }

    It 'Measure-LoraModel refuses <Case>, naming the file' -ForEach @(
        @{ Case = 'an empty file'; Lines = @(); Says = 'has no rows to score' }
        @{ Case = 'rows of one token each'; Lines = @('{"input_ids": [5]}', '{"input_ids": [7]}'); Says = 'none of its 2 rows has a token to score' }
        @{ Case = 'a row that is not JSON'; Lines = @('{"input_ids": [5, 6]', ''); Says = 'line 1: not valid JSON' }
        @{ Case = 'ids outside the vocabulary'; Lines = @('{"input_ids": [5, 100000]}'); Says = 'line 1: input_ids[1] is 100000' }
        @{ Case = 'labels not aligned with the ids'; Lines = @('{"input_ids": [5, 6, 7], "labels": [5, 6]}'); Says = 'has 3 input_ids but 2 labels' }
    ) {
        $file = Join-Path $TestDrive "measure-$($Case.Length).jsonl"
        Set-Content -LiteralPath $file -Value $Lines
        if ($Lines.Count -eq 0) { Set-Content -LiteralPath $file -Value '' -NoNewline }
        Assert-LoraError (Invoke-Capture { Measure-LoraModel -Model $model -Data $file -ErrorAction Stop }) InvalidData InvalidData $file, $Says
    }

    It 'Measure-LoraModel refuses a file that does not exist, naming it' {
        $file = Join-Path $TestDrive 'none.jsonl'
        Assert-LoraError (Invoke-Capture { Measure-LoraModel -Model $model -Data $file -ErrorAction Stop }) ObjectNotFound NotFound $file
    }
}

Describe 'Pipeline input of the wrong type' {
    It '<Command> says what it takes when given <InputText>' -ForEach $wrongInputs {
        $run = Invoke-Capture ([scriptblock]::Create("$InputText | $Command -ErrorAction Stop"))
        $name = $Command.Split(' ')[0]
        Assert-LoraError $run InvalidType WrongInputType "${name}: takes", $Says
        'TestDrive:/wrong' | Should -Not -Exist
    }

    It 'still binds what each cmdlet takes from the pipeline: adapters, clusters, adapters to Export-Lora' {
        (Import-Lora "$Adapters/a", "$Adapters/b" | Merge-Lora -Method Cat).ModuleCount | Should -Be 14
        (Import-Lora "$Adapters/a", "$Adapters/b" | Split-Msu | Invoke-RankCluster -K 4 | Merge-Lora).Rank | Should -Be 4
        (Import-Lora "$Adapters/c" | Export-Lora TestDrive:/bound -PassThru).Rank | Should -Be 4
    }

    It 'hides the catch-all parameter from help' {
        (Get-Command Merge-Lora).ParameterSets.Name | Should -Contain 'OtherInput'
        (Get-Help Merge-Lora).syntax.syntaxItem.parameter.name | Should -Not -Contain 'InputObject'
        (Get-Help Export-Lora).syntax.syntaxItem.parameter.name | Should -Not -Contain 'InputObject'
    }
}

Describe 'Mixture manifests' {
    BeforeAll {
        $saved = Join-Path $TestDrive 'manifest-source'
        Import-Lora "$Adapters/a", "$Adapters/b" | New-LoraMixture -Name ab | Export-LoraMixture $saved
    }

    It 'Import-LoraMixture refuses a manifest where <Case>, naming the file' -ForEach $manifestCases {
        $folder = Join-Path $TestDrive "manifest-$($Case.Replace(' ', '-'))"
        Copy-Item $saved $folder -Recurse
        $file = Join-Path $folder 'mixture.json'
        $manifest = Get-Content -Raw $file | ConvertFrom-Json -AsHashtable
        $manifest['experts'] = [Collections.ArrayList]@($manifest['experts'])
        $manifest['gates'] = [Collections.ArrayList]@($manifest['gates'])
        & $Edit $manifest
        $manifest | ConvertTo-Json -Depth 10 | Set-Content $file
        $run = Invoke-Capture { Import-LoraMixture $folder -ErrorAction Stop }
        $run.Errors.Count | Should -BeGreaterThan 0
        $e = $run.Errors[0]
        $e.Exception | Should -BeOfType LoraLego.Core.LoraException
        $e.FullyQualifiedErrorId | Should -BeLike 'LoraLego.*,LoraLego.Commands.ImportLoraMixtureCommand'
        $e.CategoryInfo.Category | Should -BeIn 'InvalidData', 'NotImplemented', 'ObjectNotFound'
        $e.Exception.Message | Should -BeLike "*$folder*"
        $e.Exception.Message | Should -BeLike "*$Says*"
    }
}

Describe 'Handles on input files' {
    It 'releases the input files once a merge is done: Copy-Item over an input works in the same session' {
        $a = Copy-TestAdapter "$Adapters/a" 'held-a'
        $b = Copy-TestAdapter "$Adapters/b" 'held-b'
        $merged = Import-Lora $a, $b | Merge-Lora -Method Cat
        $merged | Export-Lora TestDrive:/held-merged
        $null = Import-Lora $a, $b | Merge-Lora -Method Svd
        { Copy-Item "$Adapters/c/adapter_model.safetensors" (Join-Path $a 'adapter_model.safetensors') -Force -ErrorAction Stop } | Should -Not -Throw
        { Remove-Item $b -Recurse -Force -ErrorAction Stop } | Should -Not -Throw
    }

    It 'refuses to read an input that changed after import, naming it' {
        $a = Copy-TestAdapter "$Adapters/a" 'changed-a'
        $adapter = Import-Lora $a
        $file = Join-Path $a 'adapter_model.safetensors'
        Copy-Item "$Adapters/b/adapter_model.safetensors" $file -Force
        (Get-Item $file).LastWriteTimeUtc = [datetime]::UtcNow.AddMinutes(1)
        Assert-LoraError (Invoke-Capture { $adapter | Export-Lora TestDrive:/changed-out -ErrorAction Stop }) InvalidData FileChanged $file, 'changed after it was imported'
    }

    It 'refuses to read an input deleted after import, naming it' {
        $a = Copy-TestAdapter "$Adapters/c" 'deleted-c'
        $adapter = Import-Lora $a
        Remove-Item $a -Recurse -Force
        $run = Invoke-Capture { $adapter | Export-Lora TestDrive:/deleted-out -ErrorAction Stop }
        Assert-LoraError $run ObjectNotFound NotFound (Join-Path $a 'adapter_model.safetensors')
    }
}

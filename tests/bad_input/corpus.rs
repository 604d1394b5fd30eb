//! The cases of the bad-input corpus, by family. Hand-written cases name the answer they
//! expect; generated ones (every truncation of a picture, every option with every bad value)
//! only need a clear answer.

use super::media;

pub enum Kind {
    /// A private-chat message: a prompt with Pika-style options.
    Prompt(String),
    /// A message starting with `/`.
    Command(String),
    /// The bytes of a picture sent to animate.
    Picture(Vec<u8>),
    /// The bytes of a config file.
    Config(Vec<u8>),
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Prompt(_) => "prompt",
            Kind::Command(_) => "command",
            Kind::Picture(_) => "picture",
            Kind::Config(_) => "config",
        }
    }
}

pub enum Expect {
    /// Fine as it is.
    Accepted,
    /// Refused with a clear answer, containing this text when given.
    Refused(Option<String>),
    /// Either fine or refused clearly (generated cases whose verdict varies).
    Either,
}

pub struct Case {
    pub name: String,
    pub kind: Kind,
    pub expect: Expect,
}

fn refused(want: &str) -> Expect {
    Expect::Refused(Some(want.to_string()))
}

pub fn all() -> Vec<Case> {
    let mut cases = Vec::new();
    prompts(&mut cases);
    options(&mut cases);
    unicode(&mut cases);
    commands(&mut cases);
    pictures(&mut cases);
    configs(&mut cases);
    cases
}

fn prompt(cases: &mut Vec<Case>, name: &str, text: impl Into<String>, expect: Expect) {
    cases.push(Case {
        name: format!("prompt/{name}"),
        kind: Kind::Prompt(text.into()),
        expect,
    });
}

fn prompts(cases: &mut Vec<Case>) {
    let empty = "Please describe the sticker you want; the prompt is empty.";
    prompt(cases, "empty", "", refused(empty));
    prompt(cases, "spaces", "     ", refused(empty));
    prompt(cases, "tabs and newlines", "\t\n\r\n", refused(empty));
    prompt(cases, "only options", "-seed 4 -fps 12", refused(empty));
    prompt(cases, "only a quoted nothing", "\"\"", refused(empty));
    prompt(
        cases,
        "zero-width only",
        "\u{200B}\u{2060}\u{FEFF}",
        refused(empty),
    );
    prompt(cases, "nul bytes", "\0\0\0", refused(empty));
    prompt(cases, "controls", "\u{1}\u{7}\u{1b}[31m", Expect::Either);
    let long = "a".repeat(1001);
    prompt(
        cases,
        "1001 characters",
        long,
        refused("at most 1000 characters; yours has 1001"),
    );
    prompt(cases, "1000 characters", "b".repeat(1000), Expect::Accepted);
    prompt(
        cases,
        "100k characters",
        "cat ".repeat(25_000),
        refused("at most 1000 characters"),
    );
    prompt(
        cases,
        "1001 emoji",
        "🐱".repeat(1001),
        refused("yours has 1001"),
    );
    prompt(
        cases,
        "a megabyte word",
        "x".repeat(1 << 20),
        refused("at most 1000 characters"),
    );
    for (name, text) in [
        ("html", "<b>a cat</b> <script>alert(1)</script>"),
        (
            "markdown",
            "*bold* _it_ `code` ```block``` [link](http://x)",
        ),
        ("telegram markdown v2", "a \\_cat\\_ \\*dancing\\*"),
        ("html entities", "a &lt;cat&gt; &amp; &#x1F600;"),
        ("sql", "'; DROP TABLE jobs; --"),
        ("format strings", "%s %n %x {0} {} ${HOME} $(reboot)"),
        ("path traversal", "../../../../etc/passwd"),
        ("url", "https://example.com/a.png a cat"),
        ("json", "{\"prompt\": \"cat\", \"seed\": -1}"),
        ("mentions", "@everyone @here <@123> a cat"),
        ("discord markup", "<:emoji:123> <t:1700000000> ||spoiler||"),
        ("backslashes", "\\\\\\ a cat \\n \\t"),
        ("lone dash", "a cat - dancing"),
        ("minus temperature", "a snowman at -5°C"),
        ("triple dash word", "a ---cat"),
        ("em dash", "a cat — dancing"),
    ] {
        prompt(cases, name, text, Expect::Accepted);
    }
}

/// Every option with values that are wrong in each way a value can be.
fn options(cases: &mut Vec<Case>) {
    let huge = "9".repeat(400);
    let wordy = "w".repeat(5000);
    let bad_values: [(&str, &str); 14] = [
        ("negative", "-1"),
        ("zero", "0"),
        ("huge", &huge),
        ("nan", "NaN"),
        ("infinity", "inf"),
        ("fraction", "0.0000001"),
        ("exponent", "1e9"),
        ("words", "lots"),
        ("emoji", "🔥"),
        ("hex", "0x10"),
        ("empty quotes", "\"\""),
        ("a 5000-char value", &wordy),
        ("full-width digits", "１６"),
        ("arabic digits", "١٦"),
    ];
    for option in [
        "-ar",
        "-motion",
        "-fps",
        "-duration",
        "-seed",
        "-gs",
        "-fit",
        "-style",
    ] {
        for (what, value) in bad_values {
            prompt(
                cases,
                &format!("{option} {what}"),
                format!("a cat {option} {value}"),
                Expect::Either,
            );
        }
        prompt(
            cases,
            &format!("{option} missing"),
            format!("a cat {option}"),
            refused("needs a value"),
        );
        prompt(
            cases,
            &format!("{option} twice"),
            format!("a cat {option} {v} {option} {v}", v = good_value(option)),
            refused("twice; give it once"),
        );
    }
    for (name, text, want) in [
        (
            "unknown option",
            "a cat -zoom 3",
            "I don't know the option -zoom",
        ),
        (
            "unknown long option",
            "a cat --turbo",
            "I don't know the option --turbo",
        ),
        (
            "fps over",
            "a cat -fps 99",
            "Frame rate must be between 8 and 30 fps",
        ),
        (
            "duration over",
            "a cat -duration 11",
            "Duration must be between 3 and 10 seconds",
        ),
        (
            "duration under",
            "a cat -duration 2",
            "Duration must be between 3 and 10 seconds",
        ),
        (
            "motion over",
            "a cat -motion 5",
            "Motion must be between 0 and 4",
        ),
        ("aspect odd", "a cat -ar 7:3", "Aspect ratio must be one of"),
        (
            "aspect garbage",
            "a cat -ar wide",
            "Aspect ratio must be one of",
        ),
        (
            "seed over",
            "a cat -seed 4294967296",
            "Seed must be a whole number",
        ),
        (
            "style unknown",
            "a cat -style vaporwave",
            "There is no style called",
        ),
        (
            "fit unknown",
            "a cat -fit stretch",
            "-fit must be pad or crop",
        ),
        (
            "unclosed quote",
            "a \"cat",
            "A quote is opened but never closed.",
        ),
        (
            "unclosed guillemet",
            "a «cat",
            "A quote is opened but never closed.",
        ),
        (
            "unclosed curly",
            "a “cat",
            "A quote is opened but never closed.",
        ),
        (
            "guidance over",
            "a cat -gs 21",
            "Guidance must be between 0 and 20",
        ),
    ] {
        prompt(cases, name, text, refused(want));
    }
    for (name, text) in [
        (
            "all good options",
            "a cat -ar 9:16 -motion 3 -fps 24 -seed 42 -neg \"blurry\" -style anime -duration 5",
        ),
        ("upper-case options", "a cat -AR 9:16 -FPS 12"),
        ("double-dash options", "a cat --seed 4 --fps 12"),
        ("quoted negative", "a cat -neg \"text, watermark\""),
        ("speedup flag", "a cat -speedup"),
        ("options first", "-seed 4 a cat"),
    ] {
        prompt(cases, name, text, Expect::Accepted);
    }
}

fn good_value(option: &str) -> &'static str {
    match option {
        "-ar" => "9:16",
        "-motion" => "2",
        "-fps" => "12",
        "-duration" => "4",
        "-seed" => "42",
        "-gs" => "7",
        "-fit" => "crop",
        _ => "anime",
    }
}

fn unicode(cases: &mut Vec<Case>) {
    let zalgo: String = "cat"
        .chars()
        .flat_map(|c| std::iter::once(c).chain(std::iter::repeat_n('\u{0301}', 300)))
        .collect();
    for (name, text, expect) in [
        ("rtl arabic", "قطة ترقص", Expect::Accepted),
        ("rtl hebrew", "חתול רוקד", Expect::Accepted),
        (
            "rtl override",
            "a \u{202E}tac\u{202C} dancing",
            Expect::Accepted,
        ),
        ("bidi isolates", "\u{2067}a cat\u{2069}", Expect::Accepted),
        (
            "zero-width joiners",
            "a c\u{200D}a\u{200C}t",
            Expect::Accepted,
        ),
        (
            "zero-width inside an option",
            "a cat -se\u{200B}ed 4",
            Expect::Either,
        ),
        (
            "combining marks",
            "ca\u{0301}t dan\u{0327}cing",
            Expect::Accepted,
        ),
        ("zalgo 900 marks", zalgo.as_str(), Expect::Either),
        ("emoji zwj family", "👨‍👩‍👧‍👦 dancing", Expect::Accepted),
        ("emoji flags", "🇺🇦🇯🇵 waving", Expect::Accepted),
        ("emoji skin tones", "👋🏽 hello", Expect::Accepted),
        ("full-width text", "ａ ｃａｔ", Expect::Accepted),
        ("full-width option", "a cat －seed 4", Expect::Either),
        ("unicode minus option", "a cat −seed 4", Expect::Accepted),
        ("math bold", "𝐚 𝐜𝐚𝐭", Expect::Accepted),
        ("cjk", "踊る猫", Expect::Accepted),
        ("thai", "แมวเต้นรำ", Expect::Accepted),
        ("devanagari", "नाचती बिल्ली", Expect::Accepted),
        ("private use", "\u{E000}\u{F8FF} cat", Expect::Accepted),
        ("noncharacters", "\u{FFFE}\u{FFFF} cat", Expect::Accepted),
        (
            "replacement chars",
            "\u{FFFD}\u{FFFD} cat",
            Expect::Accepted,
        ),
        ("line separator", "a\u{2028}cat\u{2029}", Expect::Accepted),
        ("soft hyphens", "a c\u{00AD}a\u{00AD}t", Expect::Accepted),
        (
            "variation selectors",
            "a cat\u{FE0F}\u{FE0E}",
            Expect::Accepted,
        ),
        (
            "tag characters",
            "a cat\u{E0061}\u{E0062}",
            Expect::Accepted,
        ),
        (
            "ideographic space only",
            "\u{3000}\u{3000}",
            refused("the prompt is empty"),
        ),
        (
            "no-break spaces only",
            "\u{00A0}\u{202F}",
            refused("the prompt is empty"),
        ),
        ("ligatures", "ﬁsh ﬂying", Expect::Accepted),
        ("superscripts", "a cat²³", Expect::Accepted),
        ("roman numerals", "Ⅻ cats", Expect::Accepted),
    ] {
        prompt(cases, name, text, expect);
    }
    // Each kind of invisible character alone, as a whole prompt.
    for c in [
        '\u{200B}', '\u{2060}', '\u{FEFF}', '\u{00AD}', '\u{180E}', '\u{034F}',
    ] {
        prompt(
            cases,
            &format!("invisible U+{:04X} alone", c as u32),
            c.to_string().repeat(10),
            Expect::Either,
        );
    }
}

fn commands(cases: &mut Vec<Case>) {
    let mut command = |name: &str, text: String, expect: Expect| {
        cases.push(Case {
            name: format!("command/{name}"),
            kind: Kind::Command(text),
            expect,
        })
    };
    for (name, text, expect) in [
        (
            "unknown",
            "/frobnicate",
            refused("I don't know /frobnicate."),
        ),
        ("slash only", "/", Expect::Either),
        ("double slash", "//", Expect::Either),
        ("sticker empty", "/sticker", refused("Tell me what to make")),
        (
            "sticker spaces",
            "/sticker    ",
            refused("Tell me what to make"),
        ),
        (
            "sticker for us",
            "/sticker@loopsmith_bot a cat",
            Expect::Accepted,
        ),
        (
            "sticker for another bot",
            "/sticker@other_bot a cat",
            Expect::Accepted,
        ),
        ("sticker upper case", "/STICKER a cat", Expect::Either),
        (
            "sticker bad option",
            "/sticker a cat -fps 0",
            refused("Frame rate must be between"),
        ),
        (
            "sticker unclosed",
            "/sticker a \"cat",
            refused("A quote is opened"),
        ),
        (
            "zero-width in name",
            "/stic\u{200B}ker a cat",
            Expect::Either,
        ),
        ("emoji name", "/🐱", Expect::Either),
        ("rtl name", "/\u{202E}rekcits", Expect::Either),
        ("ban without id", "/ban", Expect::Accepted),
        ("ban words", "/ban somebody please", Expect::Accepted),
        ("seed junk", "/seed 🔥", Expect::Accepted),
        ("style junk", "/style 🔥🔥", Expect::Accepted),
        ("newline after slash", "/\nsticker", Expect::Either),
    ] {
        command(name, text.to_string(), expect);
    }
    command(
        "very long name",
        format!("/{}", "x".repeat(10_000)),
        refused("I don't know /"),
    );
    command(
        "very long sticker",
        format!("/sticker {}", "cat ".repeat(5000)),
        refused("Prompts can be at most 1000 characters"),
    );
    command(
        "at sign only",
        "/sticker@ a cat".to_string(),
        Expect::Either,
    );
    command("many ats", "/sticker@@@ a cat".to_string(), Expect::Either);
}

fn picture(cases: &mut Vec<Case>, name: &str, bytes: Vec<u8>, expect: Expect) {
    cases.push(Case {
        name: format!("picture/{name}"),
        kind: Kind::Picture(bytes),
        expect,
    });
}

fn pictures(cases: &mut Vec<Case>) {
    let png = media::png(96, 80);
    picture(cases, "good png", png.clone(), Expect::Accepted);
    // Every cut of a real PNG, every 23 bytes: truncated files are refused, never read past.
    for cut in (0..png.len()).step_by(23) {
        picture(
            cases,
            &format!("png cut at {cut}"),
            png[..cut].to_vec(),
            Expect::Either,
        );
    }
    // Single flipped bytes in the header.
    for at in [1, 12, 13, 16, 19, 20, 23, 29] {
        let mut bad = png.clone();
        bad[at] ^= 0xFF;
        picture(
            cases,
            &format!("png byte {at} flipped"),
            bad,
            Expect::Either,
        );
    }
    // Bombs: tiny files declaring enormous sizes.
    for (w, h) in [
        (65535, 65535),
        (100_000, 64),
        (64, 1_000_000),
        (4097, 100),
        (5000, 5000),
    ] {
        picture(
            cases,
            &format!("png declaring {w}x{h}"),
            png_declaring(&png, w, h),
            Expect::Either,
        );
        picture(
            cases,
            &format!("jpeg declaring {w}x{h}"),
            jpeg_declaring(w, h),
            Expect::Either,
        );
    }
    picture(
        cases,
        "png 65535 square",
        png_declaring(&png, 65535, 65535),
        refused("at most 4096 pixels"),
    );
    picture(
        cases,
        "jpeg zero size",
        jpeg_declaring(0, 0),
        refused("at least 64 pixels"),
    );
    picture(
        cases,
        "empty",
        Vec::new(),
        refused("That picture is empty."),
    );
    picture(
        cases,
        "one byte",
        vec![0x89],
        refused("not a picture I can use"),
    );
    for (name, bytes) in [
        ("gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec()),
        ("bmp", b"BM\x3a\0\0\0\0\0\0\0\x36\0\0\0".to_vec()),
        ("pdf", b"%PDF-1.7\n%%EOF".to_vec()),
        ("html", b"<!doctype html><img src=x>".to_vec()),
        ("svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>".to_vec()),
        ("zip", b"PK\x03\x04\x14\0\0\0".to_vec()),
        ("mp4", b"\0\0\0\x18ftypmp42\0\0\0\0".to_vec()),
        ("webm", b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01".to_vec()),
        ("elf", b"\x7fELF\x02\x01\x01\0".to_vec()),
        ("text", b"just some words, not a picture".to_vec()),
        ("utf-16 bom", b"\xff\xfe<\0s\0v\0g\0".to_vec()),
        ("riff wave", b"RIFF\x24\0\0\0WAVEfmt ".to_vec()),
        ("riff webp cut", b"RIFF\xff\xff\xff\x7fWEBPVP8X".to_vec()),
        ("jpeg soi only", vec![0xFF, 0xD8, 0xFF]),
        (
            "jpeg no frame",
            vec![0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0xFF, 0xD9],
        ),
        (
            "jpeg zero-length segment",
            vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x00, 0xFF, 0xD9],
        ),
        (
            "jpeg endless fill",
            [&[0xFF, 0xD8][..], &[0xFF; 5000], &[0xD9][..]].concat(),
        ),
    ] {
        picture(cases, name, bytes, Expect::Either);
    }
    picture(
        cases,
        "over 10 MB",
        vec![0x89; 10 * 1024 * 1024 + 1],
        refused("I take pictures up to 10 MB"),
    );
    picture(
        cases,
        "too wide",
        media::png(600, 100),
        refused("too long and thin"),
    );
    picture(
        cases,
        "too small",
        media::png(40, 40),
        refused("at least 64 pixels"),
    );
}

/// A copy of `png` whose IHDR claims another size (the CRC is left wrong, as a bomb's may be).
fn png_declaring(png: &[u8], width: u32, height: u32) -> Vec<u8> {
    let mut out = png.to_vec();
    out[16..20].copy_from_slice(&width.to_be_bytes());
    out[20..24].copy_from_slice(&height.to_be_bytes());
    out
}

/// A minimal JPEG header declaring a size (only headers are read, never pixels).
fn jpeg_declaring(width: u32, height: u32) -> Vec<u8> {
    let (w, h) = (width.min(65535) as u16, height.min(65535) as u16);
    let mut b = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08];
    b.extend(h.to_be_bytes());
    b.extend(w.to_be_bytes());
    b.extend([0x03, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xFF, 0xD9]);
    b
}

fn config(cases: &mut Vec<Case>, name: &str, text: impl Into<Vec<u8>>, expect: Expect) {
    cases.push(Case {
        name: format!("config/{name}"),
        kind: Kind::Config(text.into()),
        expect,
    });
}

fn configs(cases: &mut Vec<Case>) {
    config(cases, "empty file", "", Expect::Accepted);
    // TOML reads a date where a path goes as its text; the model folder then fails to open.
    config(
        cases,
        "date for string",
        "[local]\nmodel = 1979-05-27\n",
        Expect::Either,
    );
    config(cases, "comments only", "# nothing here\n", Expect::Accepted);
    config(
        cases,
        "bom",
        "\u{FEFF}[engine]\nworkers = 2\n",
        Expect::Either,
    );
    config(
        cases,
        "not utf-8",
        vec![0xFF, 0xFE, 0x00, b'['],
        Expect::Refused(None),
    );
    config(cases, "binary", vec![0u8; 64], Expect::Refused(None));
    for (name, text) in [
        ("unclosed table", "[engine\nworkers = 2\n"),
        ("missing value", "[engine]\nworkers =\n"),
        ("bare words", "this is not toml"),
        ("duplicate key", "[engine]\nworkers = 2\nworkers = 3\n"),
        ("duplicate table", "[engine]\n[engine]\n"),
        ("unknown section", "[turbo]\nfast = true\n"),
        ("unknown key", "[engine]\nwarp_speed = 9\n"),
        ("misspelt key", "[telegram]\nenabeld = true\n"),
        ("string for number", "[engine]\nworkers = \"two\"\n"),
        ("number for string", "[local]\nmodel = 5\n"),
        ("number for bool", "[telegram]\nenabled = 1\n"),
        ("array for table", "engine = [1, 2]\n"),
        ("negative workers", "[engine]\nworkers = -1\n"),
        ("zero workers", "[engine]\nworkers = 0\n"),
        ("huge workers", "[engine]\nworkers = 99999999999999999999\n"),
        ("float for integer", "[engine]\nworkers = 2.5\n"),
        ("nan duration", "[styles]\nduration_secs = nan\n"),
        ("inf duration", "[styles]\nduration_secs = inf\n"),
        ("duration over", "[styles]\nduration_secs = 60\n"),
        ("fps over", "[styles]\nfps = 240\n"),
        ("aspect odd", "[styles]\naspect = \"7:3\"\n"),
        ("preset unknown", "[styles]\npreset = \"nope\"\n"),
        ("bad device", "[local]\ndevice = \"tpu\"\n"),
        ("bad telegram url", "[telegram]\napi_url = \"not a url\"\n"),
        ("ftp telegram url", "[telegram]\napi_url = \"ftp://x\"\n"),
        ("bad pika url", "[pika]\nbase_url = \"http//x\"\n"),
        ("bad discord proxy", "[discord]\nproxy_url = \"::::\"\n"),
        (
            "metrics public",
            "[metrics]\nenabled = true\nlisten = \"0.0.0.0:9464\"\n",
        ),
        (
            "metrics garbage",
            "[metrics]\nenabled = true\nlisten = \"here\"\n",
        ),
        ("control tcp public", "[control]\ntcp = \"0.0.0.0:7878\"\n"),
        ("negative budget", "[pika]\ndaily_budget_usd = -5.0\n"),
        (
            "backend order unknown",
            "[engine]\nbackend_order = [\"local\", \"dalle\"]\n",
        ),
        ("admins strings", "[admins]\ntelegram = [\"me\"]\n"),
        ("admins negative", "[admins]\ntelegram = [-5]\n"),
        (
            "deep nesting",
            "a = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
        ),
        ("inline table junk", "engine = { workers = }\n"),
        ("multiline string unclosed", "[local]\nmodel = \"\"\"abc\n"),
        ("escape junk", "[local]\nmodel = \"\\q\"\n"),
        ("dotted keys junk", "engine.workers.x = 1\n"),
        ("key with nul", "[engine]\n\"wor\0kers\" = 2\n"),
        ("huge string", "[local]\nmodel = \"x\"\n[[[\n"),
        (
            "blocked words not a list",
            "[limits]\nblocked_words = \"bad\"\n",
        ),
    ] {
        config(cases, name, text, Expect::Refused(None));
    }
}

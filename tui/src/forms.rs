//! Text inputs and the two forms: Generate, and the Users screen's style editor.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use loopsmith_protocol::control::ClientMsg;
use loopsmith_protocol::{
    Aspect, BackendChoice, JobId, OutputKind, Overrides, ParamDefaults, UserKey, UserStyle,
};

/// A one-line text box with a cursor, edited with the keys readline users expect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextInput {
    pub text: String,
    /// In chars, not bytes.
    pub cursor: usize,
}

impl TextInput {
    pub fn new(text: &str) -> Self {
        TextInput {
            text: text.to_string(),
            cursor: text.chars().count(),
        }
    }

    fn byte_at(&self, chars: usize) -> usize {
        self.text
            .char_indices()
            .nth(chars)
            .map_or(self.text.len(), |(i, _)| i)
    }

    /// Handles an editing key; false when the key is not an editing key.
    pub fn handle(&mut self, key: KeyEvent) -> bool {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        // Alt+key is a chord, not text (and an Esc typed quickly before a key arrives as one).
        if key.modifiers.contains(KeyModifiers::ALT) {
            return false;
        }
        let len = self.text.chars().count();
        match key.code {
            KeyCode::Char('u') if ctrl => {
                self.text.clear();
                self.cursor = 0;
            }
            KeyCode::Char('w') if ctrl => {
                let before: Vec<char> = self.text.chars().take(self.cursor).collect();
                let mut start = before.len();
                while start > 0 && before[start - 1] == ' ' {
                    start -= 1;
                }
                while start > 0 && before[start - 1] != ' ' {
                    start -= 1;
                }
                let (a, b) = (self.byte_at(start), self.byte_at(self.cursor));
                self.text.replace_range(a..b, "");
                self.cursor = start;
            }
            KeyCode::Char('a') if ctrl => self.cursor = 0,
            KeyCode::Char('e') if ctrl => self.cursor = len,
            KeyCode::Char(c) if !ctrl => {
                let at = self.byte_at(self.cursor);
                self.text.insert(at, c);
                self.cursor += 1;
            }
            KeyCode::Backspace if self.cursor > 0 => {
                let (a, b) = (self.byte_at(self.cursor - 1), self.byte_at(self.cursor));
                self.text.replace_range(a..b, "");
                self.cursor -= 1;
            }
            KeyCode::Delete if self.cursor < len => {
                let (a, b) = (self.byte_at(self.cursor), self.byte_at(self.cursor + 1));
                self.text.replace_range(a..b, "");
            }
            KeyCode::Left => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Right => self.cursor = (self.cursor + 1).min(len),
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = len,
            KeyCode::Backspace | KeyCode::Delete => {}
            _ => return false,
        }
        true
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenField {
    Prompt,
    Style,
    Duration,
    Aspect,
    Seed,
    Output,
    Backend,
}

impl GenField {
    pub const ALL: [GenField; 7] = [
        GenField::Prompt,
        GenField::Style,
        GenField::Duration,
        GenField::Aspect,
        GenField::Seed,
        GenField::Output,
        GenField::Backend,
    ];

    pub fn label(self) -> &'static str {
        match self {
            GenField::Prompt => "Prompt",
            GenField::Style => "Style",
            GenField::Duration => "Duration",
            GenField::Aspect => "Aspect",
            GenField::Seed => "Seed",
            GenField::Output => "Output",
            GenField::Backend => "Backend",
        }
    }
}

const DURATIONS: [Option<f32>; 8] = [
    None,
    Some(3.0),
    Some(4.0),
    Some(5.0),
    Some(6.0),
    Some(7.0),
    Some(8.0),
    Some(10.0),
];
/// MP4 and GIF first: the Preview screen can play those.
const OUTPUTS: [OutputKind; 5] = [
    OutputKind::Mp4,
    OutputKind::Gif,
    OutputKind::WebmSticker,
    OutputKind::Apng,
    OutputKind::WebmEmoji,
];
const BACKENDS: [BackendChoice; 3] = [
    BackendChoice::Auto,
    BackendChoice::Local,
    BackendChoice::Pika,
];

/// The Generate screen's form. Options left at "default" are not sent, so the operator's
/// saved style and the server's defaults apply.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateForm {
    pub prompt: TextInput,
    pub style: TextInput,
    pub seed: TextInput,
    pub duration: usize,
    /// 0 is the default; 1.. index `Aspect::ALL`.
    pub aspect: usize,
    pub output: usize,
    pub backend: usize,
    pub focus: GenField,
    /// Keys go to the form (so `q` types a q) until Esc.
    pub editing: bool,
    /// The job this form submitted last; its progress and preview show beside the form.
    pub last_job: Option<JobId>,
}

impl Default for GenerateForm {
    fn default() -> Self {
        GenerateForm {
            prompt: TextInput::default(),
            style: TextInput::default(),
            seed: TextInput::default(),
            duration: 0,
            aspect: 0,
            output: 0,
            backend: 0,
            focus: GenField::Prompt,
            editing: true,
            last_job: None,
        }
    }
}

impl GenerateForm {
    pub fn value(&self, field: GenField) -> String {
        let default = || "default".to_string();
        match field {
            GenField::Prompt => self.prompt.text.clone(),
            GenField::Style => {
                if self.style.text.is_empty() {
                    default()
                } else {
                    self.style.text.clone()
                }
            }
            GenField::Seed => {
                if self.seed.text.is_empty() {
                    "random".into()
                } else {
                    self.seed.text.clone()
                }
            }
            GenField::Duration => {
                DURATIONS[self.duration].map_or_else(default, |d| format!("{d} s"))
            }
            GenField::Aspect => match self.aspect {
                0 => default(),
                n => Aspect::ALL[n - 1].to_string(),
            },
            GenField::Output => OUTPUTS[self.output].to_string(),
            GenField::Backend => BACKENDS[self.backend].to_string(),
        }
    }

    pub fn input(&mut self, field: GenField) -> Option<&mut TextInput> {
        match field {
            GenField::Prompt => Some(&mut self.prompt),
            GenField::Style => Some(&mut self.style),
            GenField::Seed => Some(&mut self.seed),
            _ => None,
        }
    }

    pub fn focus_next(&mut self, forward: bool) {
        let i = GenField::ALL
            .iter()
            .position(|f| *f == self.focus)
            .unwrap_or(0);
        let n = GenField::ALL.len();
        self.focus = GenField::ALL[if forward {
            (i + 1) % n
        } else {
            (i + n - 1) % n
        }];
    }

    /// Left/right on a choice field.
    pub fn cycle(&mut self, forward: bool) {
        let step = |v: &mut usize, n: usize| {
            *v = if forward {
                (*v + 1) % n
            } else {
                (*v + n - 1) % n
            };
        };
        match self.focus {
            GenField::Duration => step(&mut self.duration, DURATIONS.len()),
            GenField::Aspect => step(&mut self.aspect, Aspect::ALL.len() + 1),
            GenField::Output => step(&mut self.output, OUTPUTS.len()),
            GenField::Backend => step(&mut self.backend, BACKENDS.len()),
            _ => {}
        }
    }

    /// The submit command, or what is wrong with the form.
    pub fn to_submit(&self, req: u64) -> Result<ClientMsg, String> {
        let prompt = self.prompt.text.trim();
        if prompt.is_empty() {
            return Err("type a prompt first".into());
        }
        let seed = match self.seed.text.trim() {
            "" => None,
            s => Some(s.parse::<u32>().map_err(|_| {
                format!("seed must be a whole number from 0 to 4294967295, not {s}")
            })?),
        };
        let style = Some(self.style.text.trim().to_string()).filter(|s| !s.is_empty());
        Ok(ClientMsg::Submit {
            req,
            prompt: prompt.to_string(),
            overrides: Overrides {
                params: ParamDefaults {
                    duration_secs: DURATIONS[self.duration],
                    aspect: self.aspect.checked_sub(1).map(|i| Aspect::ALL[i]),
                    ..ParamDefaults::default()
                },
                seed,
                style,
                outputs: Some(vec![OUTPUTS[self.output]]),
                backend: Some(BACKENDS[self.backend]),
                ..Overrides::default()
            },
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StyleField {
    Preset,
    Suffix,
    Character,
    SeedLock,
}

impl StyleField {
    pub const ALL: [StyleField; 4] = [
        StyleField::Preset,
        StyleField::Suffix,
        StyleField::Character,
        StyleField::SeedLock,
    ];

    pub fn label(self) -> &'static str {
        match self {
            StyleField::Preset => "Preset",
            StyleField::Suffix => "Suffix",
            StyleField::Character => "Character",
            StyleField::SeedLock => "Seed lock",
        }
    }
}

/// Edits the parts of a user's style an operator changes by hand; the rest of the saved
/// style (parameter defaults) is kept as it was.
#[derive(Debug, Clone, PartialEq)]
pub struct StyleEditor {
    pub user: UserKey,
    pub original: UserStyle,
    pub fields: [TextInput; 4],
    pub focus: usize,
}

impl StyleEditor {
    pub fn new(user: UserKey, style: &UserStyle) -> Self {
        let text = |v: &Option<String>| TextInput::new(v.as_deref().unwrap_or(""));
        StyleEditor {
            user,
            original: style.clone(),
            fields: [
                text(&style.preset),
                text(&style.suffix),
                text(&style.character),
                TextInput::new(&style.seed_lock.map(|s| s.to_string()).unwrap_or_default()),
            ],
            focus: 0,
        }
    }

    pub fn to_command(&self, req: u64) -> Result<ClientMsg, String> {
        let opt = |i: usize| Some(self.fields[i].text.trim().to_string()).filter(|s| !s.is_empty());
        let seed_lock = match opt(3) {
            None => None,
            Some(s) => Some(
                s.parse::<u32>()
                    .map_err(|_| format!("seed lock must be a whole number, not {s}"))?,
            ),
        };
        Ok(ClientMsg::SetStyle {
            req,
            user: self.user.clone(),
            style: UserStyle {
                preset: opt(0),
                suffix: opt(1),
                character: opt(2),
                seed_lock,
                defaults: self.original.defaults.clone(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    #[test]
    fn text_input_edits_like_readline_and_handles_wide_chars() {
        let mut input = TextInput::default();
        for c in "a cät dog".chars() {
            input.handle(key(KeyCode::Char(c)));
        }
        input.handle(ctrl('w'));
        assert_eq!(input.text, "a cät ");
        input.handle(key(KeyCode::Left));
        input.handle(key(KeyCode::Left));
        input.handle(key(KeyCode::Backspace));
        assert_eq!(input.text, "a ct ");
        input.handle(key(KeyCode::Home));
        input.handle(key(KeyCode::Delete));
        assert_eq!(input.text, " ct ");
        input.handle(key(KeyCode::Backspace));
        assert_eq!(input.text, " ct ");
        input.handle(ctrl('u'));
        assert_eq!((input.text.as_str(), input.cursor), ("", 0));
        assert!(!input.handle(KeyEvent::new(KeyCode::Char('7'), KeyModifiers::ALT)));
        assert_eq!(input.text, "");
        assert!(!input.handle(key(KeyCode::Enter)));
    }

    #[test]
    fn the_form_builds_a_submit_with_only_what_was_chosen() {
        let mut form = GenerateForm::default();
        assert!(form.to_submit(1).unwrap_err().contains("prompt"));
        form.prompt = TextInput::new("  a fox  ");
        let ClientMsg::Submit {
            prompt, overrides, ..
        } = form.to_submit(1).expect("valid")
        else {
            panic!("not a submit");
        };
        assert_eq!(prompt, "a fox");
        assert_eq!(overrides.seed, None);
        assert_eq!(overrides.params.duration_secs, None);
        assert_eq!(overrides.outputs, Some(vec![OutputKind::Mp4]));

        form.focus = GenField::Aspect;
        form.cycle(true);
        form.cycle(true);
        form.focus = GenField::Duration;
        form.cycle(false);
        form.seed = TextInput::new("42");
        let ClientMsg::Submit { overrides, .. } = form.to_submit(1).expect("valid") else {
            panic!("not a submit");
        };
        assert_eq!(overrides.params.aspect, Some(Aspect::Wide));
        assert_eq!(overrides.params.duration_secs, Some(10.0));
        assert_eq!(overrides.seed, Some(42));

        form.seed = TextInput::new("-1");
        assert!(form.to_submit(1).unwrap_err().contains("seed"));
    }

    #[test]
    fn the_style_editor_keeps_parameter_defaults() {
        let mut style = UserStyle::default();
        style.defaults.fps = Some(12);
        style.suffix = Some("neon".into());
        let mut editor = StyleEditor::new(
            UserKey::new(loopsmith_protocol::Platform::Discord, "9"),
            &style,
        );
        editor.fields[1] = TextInput::new("");
        editor.fields[3] = TextInput::new("7");
        let ClientMsg::SetStyle { style: saved, .. } = editor.to_command(1).expect("valid") else {
            panic!("not a style edit");
        };
        assert_eq!(saved.suffix, None);
        assert_eq!(saved.seed_lock, Some(7));
        assert_eq!(saved.defaults.fps, Some(12));
        editor.fields[3] = TextInput::new("x");
        assert!(editor.to_command(1).is_err());
    }
}

//! The workbench without a terminal: every view rendered into ratatui's TestBackend, and a
//! scripted key sequence driving the app (with the worker's code run in line).

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use blockdrop::eval::tradeoff::Method;
use blockdrop::eval::{evaluate, EvalOptions};
use blockdrop::model::BlockDropFlops;
use blockdrop::tui::app::{Analysis, App, ModelInfo, Tab};
use blockdrop::tui::event::{action_for, Action};
use blockdrop::tui::ui::{self, theme};
use blockdrop::tui::worker::{handle, Job, Request, Task, Update};
use candle_core::Device;
use common::*;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::{Color, Modifier};
use ratatui::Terminal;

fn app(export_dir: PathBuf) -> (App, Job) {
    let model = r32_model();
    let dataset = Arc::new(cifar_bin());
    let info = ModelInfo {
        config: model.config.name.clone(),
        model_path: "tests/fixtures/r32_c10.pth".into(),
        data_path: "tests/fixtures/cifar-10-batches-bin".into(),
        device: "cpu".into(),
        untrained: false,
        has_policy: true,
        flops: BlockDropFlops::for_config(&model.config),
        classes: model.config.class_set,
    };
    let app = App::new(info, Arc::clone(&dataset), export_dir);
    // The fixture has no training split: no best subsets, the other baselines still run.
    let job = Job::single(
        "r32_c10.pth".into(),
        model,
        dataset,
        Err("the fixture has no training split".into()),
        Device::Cpu,
    );
    (app, job)
}

/// The whole screen of `width` × `height` cells.
fn render(app: &App, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    let mut images = ui::images::Images::half_blocks();
    terminal.draw(|f| ui::draw(f, app, &mut images)).unwrap();
    terminal.backend().buffer().clone()
}

/// A buffer's text, one string per row.
fn rows(buffer: &Buffer) -> Vec<String> {
    (0..buffer.area.height)
        .map(|y| {
            (0..buffer.area.width)
                .map(|x| buffer[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect()
}

/// The screen as text, one line per row.
fn screen(app: &App) -> String {
    rows(&render(app, 130, 40)).join("\n")
}

fn ready_app() -> App {
    let (mut app, job) = app(PathBuf::from("unused"));
    let options = EvalOptions {
        keep_logits: true,
        ..EvalOptions::default()
    };
    let records = evaluate(
        &job.models[0].1,
        &job.dataset,
        &options,
        &Device::Cpu,
        |_, _| {},
    )
    .unwrap();
    app.update(Update::Analysed(Box::new(
        Analysis::new(0.5, records).unwrap(),
    )));
    app
}

#[test]
fn loading_shows_a_progress_gauge() {
    let (mut app, _) = app(PathBuf::from("unused"));
    app.update(Update::Progress {
        task: Task::Work(blockdrop::study::Phase::Evaluating),
        done: 16,
        total: 48,
    });
    let s = screen(&app);
    assert!(
        s.contains("evaluating tests/fixtures/cifar-10-batches-bin") && s.contains("16/48"),
        "{s}"
    );
}

/// The loading view as a whole, cell by cell: the tab bar (Overview selected), a gauge a
/// third full for 16 of 48 images with its label centred, and the key hints on the status
/// line. Any layout change shows here.
#[test]
fn the_loading_view_renders_exactly() {
    let (mut app, _) = app(PathBuf::from("unused"));
    app.update(Update::Progress {
        task: Task::Work(blockdrop::study::Phase::Evaluating),
        done: 16,
        total: 48,
    });
    let buffer = render(&app, 80, 12);
    // Rows 0-2 the tab bar; the body's 8 rows put the 3-row gauge below 40% of them (3
    // rows); the status line last. The gauge's inside is 78 cells: 16/48 of it is 26 cells
    // filled, and the 5-cell label starts (78 - 5) / 2 = 36 cells in.
    let expected = [
        "┌ blockdrop — R32_C10 on tests/fixtures/cifar-10-batches-bin ──────────────────┐",
        // Eight tabs do not fit in 80 columns: the last ones are cut at the border.
        "│ 1 Overview │ 2 Blocks │ 3 Policies │ 4 Clusters │ 5 Trade-off │ 6 Easy/Hard ││",
        "└──────────────────────────────────────────────────────────────────────────────┘",
        "",
        "",
        "",
        "┌ evaluating tests/fixtures/cifar-10-batches-bin ──────────────────────────────┐",
        "│██████████████████████████          16/48                                     │",
        "└──────────────────────────────────────────────────────────────────────────────┘",
        "",
        "",
        " ? help  q quit  Tab/1-8 views  ↑↓ select  s sort  m model  p profile  e export",
    ];
    // Every character here is one cell wide; blank cells pad each line to the full width.
    let expected: Vec<String> = expected.iter().map(|l| format!("{l:<80}")).collect();
    let actual = rows(&buffer);
    assert_eq!(actual.len(), expected.len());
    for (y, (actual, expected)) in actual.iter().zip(&expected).enumerate() {
        assert_eq!(actual, expected, "row {y}");
    }
    // The selected tab's title ("1" at column 2) is highlighted, the next ("2" at column
    // 15) is not, and the filled part of the gauge is in the gauge colour.
    let (selected, other) = (&buffer[(2, 1)], &buffer[(15, 1)]);
    assert_eq!((selected.symbol(), other.symbol()), ("1", "2"));
    assert_eq!(
        (selected.fg, selected.modifier),
        (theme::ACCENT, Modifier::BOLD)
    );
    assert_eq!(
        (other.fg, other.modifier),
        (Color::Reset, Modifier::empty())
    );
    assert_eq!(buffer[(1, 7)].fg, theme::KEPT);
}

#[test]
fn overview_shows_the_four_lines_and_flops() {
    let s = screen(&ready_app());
    for line in summary_lines(&json("r32_c10_expected.json")) {
        assert!(s.contains(&line), "{line:?} missing:\n{s}");
    }
    assert!(s.contains("FLOPs: full network 1.38E+08"), "{s}");
    assert!(s.contains("R32_C10 on tests/fixtures/cifar-10-batches-bin"));
}

#[test]
fn every_view_renders_its_content() {
    let mut app = ready_app();
    let expect = [
        (Tab::Blocks, "Blocks, sorted by block"),
        (Tab::Policies, "48 images by blocks used"),
        (Tab::Clusters, "clusters of policies (Hamming k-medoids)"),
        (Tab::Tradeoff, "computing the trade-off sweep"),
        (Tab::EasyHard, "easiest: fewest blocks, most confident"),
    ];
    for (tab, needle) in expect {
        app.tab = tab;
        let s = screen(&app);
        assert!(s.contains(needle), "{tab:?}: {needle:?} missing:\n{s}");
    }
    // The selected image's details, with its policy as a strip of kept/dropped cells.
    app.tab = Tab::Policies;
    let s = screen(&app);
    assert!(
        s.contains("selected image") && s.contains("keep probability per block"),
        "{s}"
    );
    assert!(s.contains('■') && s.contains('·'));
    app.show_help = true;
    assert!(screen(&app).contains("keys (? or Esc closes)"));
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

/// Feeds keys through the same mapping as the terminal loop, running requests in line.
fn press(app: &mut App, job: &Job, keys: &[KeyEvent]) {
    for &k in keys {
        if let Some(request) = action_for(k, app).and_then(|a| app.apply(a)) {
            handle(job, &request, &mut |u| app.update(u));
        }
    }
}

#[test]
fn a_scripted_session_visits_every_view_sorts_filters_slides_profiles_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    let (mut app, job) = app(dir.path().join("report"));
    handle(&job, &app.initial_request(), &mut |u| app.update(u));
    assert_eq!(app.analysis.as_ref().map(|a| a.records.len()), Some(48));

    // Once the first evaluation is in, the sweep follows by itself, once.
    assert_eq!(app.follow_up(), Some(Request::Tradeoff { threshold: 0.5 }));
    assert_eq!(app.follow_up(), None);
    app.busy = None;
    assert_eq!(app.follow_up(), None);

    // Every tab by Tab; the trade-off sweep runs when its tab first opens.
    let tab = KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE);
    let mut seen = vec![app.tab];
    for _ in 0..Tab::ALL.len() {
        press(&mut app, &job, &[tab]);
        seen.push(app.tab);
    }
    assert_eq!(seen.first(), seen.last());
    assert!(Tab::ALL.iter().all(|t| seen.contains(t)));
    assert!(app
        .tradeoff
        .as_ref()
        .is_some_and(|(_, t)| t.points.iter().any(|p| p.method == Method::Full)));
    // The Overview now answers the adaptivity question.
    press(&mut app, &job, &[key('1')]);
    let s = screen(&app);
    for needle in [
        "adaptivity gain",
        "oracle bound",
        "static frontier",
        "no best subsets: the fixture has no training split",
    ] {
        assert!(s.contains(needle), "{needle:?} missing:\n{s}");
    }

    // Policies: select, re-order by class, filter to cats.
    press(&mut app, &job, &[key('3'), key('j'), key('j')]);
    assert_eq!(app.policies_view.selected, 2);
    press(
        &mut app,
        &job,
        &[
            key('s'),
            key('/'),
            key('c'),
            key('a'),
            key('t'),
            KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE),
        ],
    );
    let rows = app.policy_rows();
    let analysis = app.analysis.as_ref().unwrap();
    assert!(
        !rows.is_empty() && rows.iter().all(|&i| analysis.records[i].label == 3),
        "{rows:?}"
    );

    // Blocks: sort by keep rate.
    press(&mut app, &job, &[key('2'), key('s')]);
    let order = app.block_rows();
    let rates = &app.analysis.as_ref().unwrap().keep_rates;
    assert!(order.windows(2).all(|w| rates[w[0]] >= rates[w[1]]));

    // Trade-off: the slider re-evaluates at the new threshold.
    press(
        &mut app,
        &job,
        &[key('5'), KeyEvent::new(KeyCode::Right, KeyModifiers::NONE)],
    );
    assert_eq!(app.threshold, 0.55);
    assert_eq!(app.analysis.as_ref().unwrap().threshold, 0.55);
    assert!(screen(&app).contains("threshold 0.55"));

    // Profile and export.
    press(&mut app, &job, &[key('p')]);
    assert_eq!(app.profile.as_ref().map(|p| p.stages.len()), Some(18));
    press(&mut app, &job, &[key('e')]);
    assert!(
        dir.path().join("report/index.md").is_file(),
        "{:?}",
        app.message
    );
    assert!(app
        .message
        .as_deref()
        .is_some_and(|m| m.starts_with("report written to")));

    press(&mut app, &job, &[key('q')]);
    assert!(app.quit);
}

#[test]
fn busy_work_is_not_queued_twice() {
    let (mut app, _) = app(PathBuf::from("unused"));
    // A new app is busy with its first request: evaluating at the default threshold.
    assert_eq!(app.initial_request(), Request::Evaluate { threshold: 0.5 });
    assert_eq!(
        app.busy,
        Some((Task::Work(blockdrop::study::Phase::Evaluating), 0, 1))
    );
    // Still evaluating: profile and export wait.
    assert_eq!(app.apply(Action::Profile), None);
    assert!(app
        .message
        .as_deref()
        .is_some_and(|m| m.starts_with("busy")));
    assert_eq!(app.apply(Action::Export), None);
    // Opening the Trade-off view does not start the sweep meanwhile either.
    assert_eq!(app.apply(Action::Tab(4)), None);
    assert_eq!(app.tab, Tab::Tradeoff);
    assert_eq!(
        app.busy,
        Some((Task::Work(blockdrop::study::Phase::Evaluating), 0, 1))
    );
}

#[test]
fn each_view_keeps_its_own_cursor() {
    let mut app = ready_app();
    assert!(app.analysis.as_ref().unwrap().clusters.len() >= 2);
    // Two rows down in Policies.
    app.apply(Action::Tab(2));
    app.apply(Action::Down);
    app.apply(Action::Down);
    assert_eq!(app.policies_view.selected, 2);
    // Clusters starts at its own first row; moving there leaves Policies' cursor alone.
    app.apply(Action::Tab(3));
    assert_eq!(app.clusters_view.selected, 0);
    app.apply(Action::Down);
    assert_eq!(app.clusters_view.selected, 1);
    assert_eq!(app.policies_view.selected, 2);
    // Back in Policies (by Shift-Tab) the cursor is where it was, and moves from there.
    app.apply(Action::PrevTab);
    assert_eq!(app.tab, Tab::Policies);
    assert_eq!(app.policies_view.selected, 2);
    app.apply(Action::Up);
    assert_eq!(app.policies_view.selected, 1);
    assert_eq!(app.clusters_view.selected, 1);
    // The views never opened kept theirs; the ones without rows have none to move.
    assert_eq!(app.blocks_view.selected, 0);
    assert_eq!(app.easy_hard_view.selected, 0);
    app.apply(Action::Tab(0));
    app.apply(Action::Down);
    assert_eq!(
        (app.policies_view.selected, app.clusters_view.selected),
        (1, 1)
    );
}

#[test]
fn the_cluster_member_stays_within_the_selected_cluster() {
    let mut app = ready_app();
    let sizes: Vec<usize> = app
        .analysis
        .as_ref()
        .unwrap()
        .clusters
        .iter()
        .map(|c| c.members.len())
        .collect();
    assert!(sizes.len() >= 2, "{sizes:?}");
    app.apply(Action::Tab(3));
    // Paging past the last member stops at it.
    for _ in 0..sizes[0] + 5 {
        app.apply(Action::Right);
    }
    assert_eq!(app.clusters_view.member, sizes[0] - 1);
    let n = sizes[0];
    assert!(
        screen(&app).contains(&format!("member {n} of {n} (← → to page)")),
        "{}",
        screen(&app)
    );
    app.apply(Action::Left);
    assert_eq!(app.clusters_view.member, n.saturating_sub(2));
    // Another cluster shows from its first member, and is bounded by its own size.
    app.apply(Action::Down);
    assert_eq!(app.clusters_view.member, 0);
    assert!(screen(&app).contains(&format!("member 1 of {} ", sizes[1])));
    for _ in 0..sizes[1] + 5 {
        app.apply(Action::Right);
    }
    assert_eq!(app.clusters_view.member, sizes[1] - 1);
    // ← → in another view leave the member alone.
    app.apply(Action::Tab(1));
    app.apply(Action::Left);
    app.apply(Action::Tab(3));
    assert_eq!(app.clusters_view.member, sizes[1] - 1);
}

#[test]
fn a_new_analysis_keeps_every_cursor_within_its_rows() {
    let mut app = ready_app();
    app.apply(Action::Tab(2));
    for _ in 0..4 {
        app.apply(Action::PageDown);
    }
    assert_eq!(app.policies_view.selected, 40);
    app.apply(Action::Tab(3));
    let clusters = app.analysis.as_ref().unwrap().clusters.len();
    for _ in 0..clusters {
        app.apply(Action::Down);
    }
    for _ in 0..48 {
        app.apply(Action::Right);
    }
    // A re-evaluation with far fewer images (hence fewer and smaller clusters).
    let records = app.analysis.as_ref().unwrap().records[..3].to_vec();
    app.update(Update::Analysed(Box::new(
        Analysis::new(0.5, records).unwrap(),
    )));
    let a = app.analysis.as_ref().unwrap();
    assert_eq!(app.policies_view.selected, 2);
    assert!(app.clusters_view.selected < a.clusters.len());
    let members = a.clusters[app.clusters_view.selected].members.len();
    assert!(
        app.clusters_view.member < members,
        "{} of {members}",
        app.clusters_view.member
    );
}

#[test]
fn esc_cancels_the_task_in_progress_and_a_cancelled_export_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let (mut app, job) = app(out.clone());
    app.busy = None; // the first evaluation done
    assert_eq!(
        app.apply(Action::Export),
        Some(Request::Export(out.clone()))
    );
    let key = KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE);
    assert_eq!(action_for(key, &app), Some(Action::Cancel));
    // The flag is raised as the first progress arrives, as the interface does on Esc.
    let flag = Arc::new(AtomicBool::new(false));
    let mut updates = Vec::new();
    blockdrop::cancel::scope(&flag, || {
        handle(&job, &Request::Export(out.clone()), &mut |u| {
            flag.store(true, Ordering::Relaxed);
            updates.push(u);
        })
    });
    assert!(
        matches!(updates.last(), Some(Update::Cancelled)),
        "{:?}",
        updates.last()
    );
    app.update(updates.pop().unwrap());
    assert!(app.busy.is_none());
    assert_eq!(app.message.as_deref(), Some("cancelled"));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing left"
    );
}

#[test]
fn several_models_compare_in_the_models_view_m_switches_them_and_runs_refresh() {
    let (app, _) = app(PathBuf::from("unused"));
    let legacy =
        blockdrop::checkpoint::load_model(&fixture("r32_c10_legacy.pth"), None, None, &Device::Cpu)
            .unwrap()
            .model;
    let job = Job {
        models: vec![
            ("r32_c10.pth".into(), Arc::new(r32_model())),
            ("r32_c10_legacy.pth".into(), Arc::new(legacy)),
        ],
        current: std::sync::atomic::AtomicUsize::new(0),
        dataset: Arc::new(cifar_bin()),
        selection: Arc::new(Err("the fixture has no training split".into())),
        device: Device::Cpu,
    };
    let mut second = app.info.clone();
    second.model_path = "r32_c10_legacy.pth".into();
    let mut first = app.info.clone();
    first.model_path = "r32_c10.pth".into();
    // A run folder, as a run still training leaves it.
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("g5-live");
    std::fs::create_dir(&run).unwrap();
    let shipped = asset("training/fmnist-finetune-g5");
    for name in ["config.json", "metrics.csv"] {
        std::fs::copy(shipped.join(name), run.join(name)).unwrap();
    }
    let mut app = app.with_models(vec![first, second], vec![run.clone()]);
    handle(&job, &app.initial_request(), &mut |u| app.update(u));

    // Models: the comparison runs on the worker when the view first opens.
    press(&mut app, &job, &[key('7')]);
    let comparison = app.comparison.as_ref().expect("compared");
    assert_eq!(comparison.compared().count(), 2);
    let s = screen(&app);
    for needle in [
        "2 models on the same images",
        "r32_c10.pth",
        "r32_c10_legacy.pth",
    ] {
        assert!(s.contains(needle), "{needle:?} missing:\n{s}");
    }
    // m shows the next model in every view: evaluated afresh.
    press(&mut app, &job, &[key('m')]);
    assert_eq!(app.current, 1);
    assert_eq!(job.current.load(Ordering::Relaxed), 1);
    assert!(app.analysis.is_some());
    assert!(screen(&app).contains("model 2/2 r32_c10_legacy.pth"));
    // Enter on the first row goes back.
    press(
        &mut app,
        &job,
        &[key('k'), KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)],
    );
    assert_eq!(app.current, 0);

    // Runs: the folder's epochs, and one more once the run appends it.
    press(&mut app, &job, &[key('8')]);
    let epochs = |app: &App| match &app.runs.read[0] {
        Ok(r) => r.epochs.len(),
        Err(e) => panic!("{e}"),
    };
    let before = epochs(&app);
    assert!(screen(&app).contains("g5-live"));
    let mut metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    metrics.push_str(&format!(
        "{before},1e-5,0.1,0.9,0.93,0.2,10.0,1.0,9,190.0,300.0\n"
    ));
    std::fs::write(run.join("metrics.csv"), metrics).unwrap();
    app.runs.read_at = None;
    assert!(app.runs.refresh());
    assert_eq!(epochs(&app), before + 1);
    // Not again before the refresh interval.
    assert!(!app.runs.refresh());
}

//! The workbench without a terminal: every view rendered into ratatui's TestBackend, and a
//! scripted key sequence driving the app (with the worker's code run in line).

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use blockdrop::eval::{evaluate, EvalOptions};
use blockdrop::model::BlockDropFlops;
use blockdrop::tui::app::{Analysis, App, ModelInfo, Tab};
use blockdrop::tui::event::{action_for, Action};
use blockdrop::tui::ui;
use blockdrop::tui::worker::{handle, Job, Request, Update};
use candle_core::Device;
use common::*;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
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
        flops: BlockDropFlops::for_config(&model.config),
        class_names: blockdrop::report::class_names(&model.config.name),
    };
    let app = App::new(info, Arc::clone(&dataset), export_dir);
    let job = Job {
        model: Arc::new(model),
        dataset,
        device: Device::Cpu,
    };
    (app, job)
}

/// The screen as text, one line per row.
fn screen(app: &App) -> String {
    let mut terminal = Terminal::new(TestBackend::new(130, 40)).unwrap();
    let mut images = ui::images::Images::half_blocks();
    terminal.draw(|f| ui::draw(f, app, &mut images)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    (0..buffer.area.height)
        .map(|y| {
            (0..buffer.area.width)
                .map(|x| buffer[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ready_app() -> App {
    let (mut app, job) = app(PathBuf::from("unused"));
    let options = EvalOptions {
        keep_logits: true,
        ..EvalOptions::default()
    };
    let records = evaluate(&job.model, &job.dataset, &options, &Device::Cpu, |_, _| {}).unwrap();
    app.update(Update::Analysed(Box::new(Analysis::new(0.5, records))));
    app
}

#[test]
fn loading_shows_a_progress_gauge() {
    let (mut app, _) = app(PathBuf::from("unused"));
    app.update(Update::Progress {
        task: "evaluating",
        done: 16,
        total: 48,
    });
    let s = screen(&app);
    assert!(
        s.contains("evaluating tests/fixtures/cifar-10-batches-bin") && s.contains("16/48"),
        "{s}"
    );
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

    // Every tab by Tab; the trade-off sweep runs when its tab first opens.
    let tab = KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE);
    let mut seen = vec![app.tab];
    for _ in 0..6 {
        press(&mut app, &job, &[tab]);
        seen.push(app.tab);
    }
    assert_eq!(seen.first(), seen.last());
    assert!(Tab::ALL.iter().all(|t| seen.contains(t)));
    assert!(app
        .tradeoff
        .as_ref()
        .is_some_and(|t| t.iter().any(|p| p.method == "Full")));

    // Policies: select, re-order by class, filter to cats.
    press(&mut app, &job, &[key('3'), key('j'), key('j')]);
    assert_eq!(app.selected, 2);
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
    // Still evaluating: profile and export wait.
    assert_eq!(app.apply(blockdrop::tui::event::Action::Profile), None);
    assert!(app
        .message
        .as_deref()
        .is_some_and(|m| m.starts_with("busy")));
    assert_ne!(app.initial_request(), Request::Tradeoff);
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

;;; emacs_snippet_driver.el --- a user's init: editors/README.md's snippet, then a Python file  -*- lexical-binding: t; -*-
;; Environment: DIFFGEM_SNIPPET (the elisp block from editors/README.md, repo path filled in),
;; DIFFGEM_LSP (server), DIFFGEM_SETTINGS, DIFFGEM_EMACS_OUT (JSON path), DIFFGEM_EMACS_CASE:
;;   "missing": eglot snippet with a server path that does not exist; two files opened, a few commands run.
;;   "lspmode": lsp-mode snippet; completion at DIFFGEM_HOLE, then diffgem-rewrite-region on each
;;              of DIFFGEM_REWRITES (JSON list of {text, start: [line, col], end: [line, col]}, 0-based).
;; Run with `emacs -Q --batch' (no site-lisp, no package activation), as the issue's user did.
(load (expand-file-name "emacs_driver_common.el" (file-name-directory load-file-name)) nil t)

(defvar driver-errors nil)

(defun driver-command-loop ()
  "What the command loop does after a command: `post-command-hook', errors reported, not raised."
  (condition-case err
      (run-hooks 'post-command-hook)
    (error (push (format "Error in post-command-hook: %S" err) driver-errors))))

(defun driver-run-idle-timers ()
  "Batch Emacs is never idle: run what `run-with-idle-timer' queued (lsp-deferred's start)."
  (dolist (timer (copy-sequence timer-idle-list))
    (condition-case err
        (timer-event-handler timer)
      (error (push (format "Error in idle timer: %S" err) driver-errors)))))

;; Test-only lsp-mode state: a throwaway session file, only diffgem (no other Python servers here).
(setq lsp-session-file (expand-file-name "lsp-session" temporary-file-directory)
      lsp-response-timeout 90
      lsp-keep-workspace-alive nil
      lsp-disabled-clients '(pylsp pyls mspyls jedi pyright ruff-lsp semgrep-ls))

(condition-case err
    (eval (car (read-from-string (concat "(progn " (getenv "DIFFGEM_SNIPPET") "\n)"))) t)
  (error (push (format "snippet: %S" err) driver-errors)))
(setq diffgem-server-path (getenv "DIFFGEM_LSP")
      diffgem-settings (json-parse-string (getenv "DIFFGEM_SETTINGS") :object-type 'plist))

(defun driver-missing ()
  (dolist (file command-line-args-left)
    (find-file file)
    (driver-command-loop)
    (driver-command-loop)))

(defun driver-lspmode ()
  (find-file (car command-line-args-left))
  (driver-run-idle-timers)
  (driver-wait (lambda () (equal (plist-get diffgem-status :state) "ready")) 90)
  (driver-put "servers" (vconcat (mapcar (lambda (w) (symbol-name (lsp--client-server-id (lsp--workspace-client w))))
                                         (lsp-workspaces))))
  (driver-put "status" (plist-get diffgem-status :state))
  (let ((hole (mapcar #'string-to-number (split-string (getenv "DIFFGEM_HOLE") ","))))
    (goto-char (point-min))
    (forward-line (nth 0 hole))
    (forward-char (nth 1 hole))
    (driver-put "before_completion" (buffer-string))
    (let ((completion-styles '(basic partial-completion emacs22)))
      (completion-at-point))
    (driver-put "after_completion" (buffer-string)))
  (driver-put "rewrites" (vconcat (mapcar #'driver-rewrite (driver-rewrites)))))

(condition-case err
    (if (equal (getenv "DIFFGEM_EMACS_CASE") "missing") (driver-missing) (driver-lspmode))
  (error (push (format "driver: %S" err) driver-errors)))
(driver-put "errors" (vconcat (reverse driver-errors)))
(driver-put "warnings" (let ((buffer (get-buffer "*Warnings*")))
                         (if buffer (with-current-buffer buffer (buffer-string)) "")))
(driver-write)
(kill-emacs 0)

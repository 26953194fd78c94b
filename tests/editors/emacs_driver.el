;;; emacs_driver.el --- drive eglot + diffgem.el in `emacs --batch'; results as JSON  -*- lexical-binding: t; -*-
;; Environment: DIFFGEM_LSP (server), DIFFGEM_EMACS_OUT (JSON path), DIFFGEM_HOLE ("line,col", 0-based),
;; DIFFGEM_REWRITES (JSON list of {text, start, end}: each text is rewritten on that selection),
;; DIFFGEM_EMACS_CASE ("session" or "startup").  tests/editors/test_emacs.py asserts on the JSON.
(load (expand-file-name "emacs_driver_common.el" (file-name-directory load-file-name)) nil t)
(require 'eglot)
(require 'diffgem)

(setq diffgem-server-path (getenv "DIFFGEM_LSP")
      diffgem-settings (json-parse-string (getenv "DIFFGEM_SETTINGS") :object-type 'plist)
      eglot-connect-timeout 60
      eglot-sync-connect t
      jsonrpc-default-request-timeout 90) ; the first model call can take seconds on a busy CPU

(defun driver-connect ()
  "Connect eglot the way `eglot-ensure' does, through `eglot-server-programs'."
  (apply #'eglot--connect (eglot--guess-contact)))

;; eglot's listing of the selection's actions, recorded beside each rewrite.
(defun driver-listed (beg end)
  (vconcat (mapcar (lambda (a) (list (cons "title" (plist-get a :title))
                                     (cons "kind" (plist-get a :kind))
                                     (cons "has_command" (and (plist-get a :command) t))))
                   (eglot-code-actions beg end "refactor.rewrite"))))

(defun driver-session ()
  (let* ((hole (mapcar #'string-to-number (split-string (getenv "DIFFGEM_HOLE") ",")))
         (server (driver-connect)))
    (driver-put "major_mode" (symbol-name major-mode))
    (driver-put "server_command" (vconcat (process-command (jsonrpc--process server))))
    (driver-put "language_id" (eglot--language-id server))
    (driver-put "capabilities"
                (list (cons "completion" (and (eglot--server-capable :completionProvider) t))
                      (cons "code_action" (and (eglot--server-capable :codeActionProvider) t))))
    (driver-wait (lambda () (equal (plist-get diffgem-status :state) "ready")) 60)
    (driver-put "status" (plist-get diffgem-status :state))
    ;; Completion at the hole: what M-x completion-at-point does with eglot's capf.
    (goto-char (point-min))
    (forward-line (nth 0 hole))
    (forward-char (nth 1 hole))
    (let ((before (buffer-string))
          (completion-styles '(basic partial-completion emacs22)))
      (let ((capf (eglot-completion-at-point)))
        (driver-put "capf_candidates"
                    (vconcat (all-completions "" (nth 2 capf)))))
      (completion-at-point)
      (driver-put "before_completion" before)
      (driver-put "after_completion" (buffer-string)))
    ;; "Rewrite selection" on each sample's region through diffgem-rewrite-region (eglot-code-actions).
    (driver-put "rewrites" (vconcat (mapcar (lambda (sample) (driver-rewrite sample #'driver-listed))
                                            (driver-rewrites))))
    ;; eglot 1.9 waits only 1.5 s for the shutdown response; the server stops its worker first.
    (eglot-shutdown server nil 15)))

(defun driver-startup ()
  (driver-put "error" nil)
  (condition-case err
      (driver-connect)
    (error (driver-put "connect_error" (error-message-string err)))))

(condition-case err
    (progn
      (find-file (car command-line-args-left))
      (setq command-line-args-left nil)
      (if (equal (getenv "DIFFGEM_EMACS_CASE") "startup") (driver-startup) (driver-session)))
  (error (driver-put "error" (error-message-string err))))
(driver-write)
(kill-emacs 0)

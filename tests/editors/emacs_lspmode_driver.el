;;; emacs_lspmode_driver.el --- drive lsp-mode + diffgem.el in `emacs --batch'; results as JSON  -*- lexical-binding: t; -*-
;; Same environment as emacs_driver.el (DIFFGEM_LSP, DIFFGEM_SETTINGS, DIFFGEM_EMACS_OUT, DIFFGEM_HOLE).
(load (expand-file-name "emacs_driver_common.el" (file-name-directory load-file-name)) nil t)
(require 'lsp-mode)
(require 'diffgem)

(setq lsp-auto-guess-root t
      lsp-enable-snippet nil
      lsp-enable-file-watchers nil
      lsp-keep-workspace-alive nil
      lsp-headerline-breadcrumb-enable nil
      lsp-modeline-code-actions-enable nil
      lsp-modeline-diagnostics-enable nil
      lsp-modeline-workspace-status-enable nil
      lsp-session-file (expand-file-name "lsp-session" temporary-file-directory)
      lsp-response-timeout 90
      ;; Only diffgem: other Python servers are not installed here and would only add noise.
      lsp-disabled-clients '(pylsp pyls mspyls jedi pyright ruff-lsp semgrep-ls))
(setq diffgem-server-path (getenv "DIFFGEM_LSP")
      diffgem-settings (json-parse-string (getenv "DIFFGEM_SETTINGS") :object-type 'plist))

(condition-case err
    (let ((hole (mapcar #'string-to-number (split-string (getenv "DIFFGEM_HOLE") ","))))
      (find-file (car command-line-args-left))
      (setq command-line-args-left nil)
      (lsp)
      (driver-wait (lambda () (equal (plist-get diffgem-status :state) "ready")) 60)
      (driver-put "servers" (vconcat (mapcar (lambda (w) (symbol-name (lsp--client-server-id (lsp--workspace-client w))))
                                             (lsp-workspaces))))
      (driver-put "status" (plist-get diffgem-status :state))
      (driver-put "inline_completion_mode" (fboundp 'lsp-inline-completion-mode))
      (goto-char (point-min))
      (forward-line (nth 0 hole))
      (forward-char (nth 1 hole))
      (driver-put "before_completion" (buffer-string))
      (let ((completion-styles '(basic partial-completion emacs22)))
        (completion-at-point))
      (driver-put "after_completion" (buffer-string)))
  (error (driver-put "error" (error-message-string err))))
(driver-write)
(kill-emacs 0)

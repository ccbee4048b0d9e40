; C tags. Based on tree-sitter-c's queries/tags.scm (MIT), with the whole function
; definition as the definition node (for signatures), prototypes, macros, call and type
; references and #include captures added for swarm-lsp.

(function_definition
  declarator: (function_declarator declarator: (identifier) @name.definition.function)) @definition.function

(function_definition
  declarator: (_ (function_declarator declarator: (identifier) @name.definition.function))) @definition.function

(declaration
  declarator: (function_declarator declarator: (identifier) @name.definition.function)) @definition.function

(declaration
  declarator: (_ (function_declarator declarator: (identifier) @name.definition.function))) @definition.function

(struct_specifier name: (type_identifier) @name.definition.class body: (_)) @definition.class

(union_specifier name: (type_identifier) @name.definition.class body: (_)) @definition.class

(enum_specifier name: (type_identifier) @name.definition.type body: (_)) @definition.type

(type_definition declarator: (type_identifier) @name.definition.type) @definition.type

(preproc_def name: (identifier) @name.definition.macro) @definition.macro

(preproc_function_def name: (identifier) @name.definition.macro) @definition.macro

(call_expression
  function: [
    (identifier) @name.reference.call
    (field_expression field: (field_identifier) @name.reference.call)
  ]) @reference.call

((type_identifier) @name.reference.type) @reference.type

(preproc_include path: (string_literal (string_content) @name.import.module)) @import

(preproc_include path: (system_lib_string) @name.import.module) @import

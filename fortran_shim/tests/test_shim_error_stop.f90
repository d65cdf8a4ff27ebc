!> Without `stat`, an rsoil_couple error stops the program (non-zero exit) with the message.
!> Usage: test_shim_error_stop <missing model path>; expected to fail.
program test_shim_error_stop
  use rsoil_couple_mod
  implicit none
  type(rsoil_coupler) :: c
  character(len=1024) :: path
  call get_command_argument(1, path)
  call c%init(trim(path), 4, RSC_POLICY_LAGGED)
  write (*, '(a)') 'init returned: the error did not stop the program'
end program test_shim_error_stop
